package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
	"github.com/sandtrail/sandtrail/collector/elastic"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/collector/splunk"
	"github.com/sandtrail/sandtrail/collector/stdout"
	"github.com/sandtrail/sandtrail/collector/syslog"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/schema"
)

// sinkBuilder decodes a sink's section of the collector file strictly
// and, when build is set, makes the sink. Without build it touches
// nothing: no file, no secret, no network (collect --check).
type sinkBuilder func(e *env, log zerolog.Logger, node *yaml.Node, file string, build bool) (collector.Sink, error)

// sinkTypes maps the type of a sink in the collector file to its package.
func sinkTypes() map[string]sinkBuilder {
	return map[string]sinkBuilder{
		"ndjson": kind(ndjson.New, func(_ *env, log zerolog.Logger, c *ndjson.Config) { c.Logger = log }),
		"stdout": kind(stdout.New, func(e *env, _ zerolog.Logger, c *stdout.Config) {
			c.Out = e.stdout
			if os.Getenv("NO_COLOR") != "" && c.Color != stdout.ColorAlways {
				c.Color = stdout.ColorNever
			}
		}),
		// Only this program reads the environment: the sinks get the lookup
		// for their *_env secrets from here.
		"splunk":  kind(splunk.New, func(_ *env, _ zerolog.Logger, c *splunk.Config) { c.LookupEnv = os.LookupEnv }),
		"elastic": kind(elastic.New, func(_ *env, _ zerolog.Logger, c *elastic.Config) { c.LookupEnv = os.LookupEnv }),
		"syslog":  kind[syslog.Config](syslog.New, nil),
		"alert":   kind(alert.New, func(_ *env, _ zerolog.Logger, c *alert.Config) { c.LookupEnv = os.LookupEnv }),
	}
}

// kind makes the builder of one sink package: collector.DecodeStrict into
// its Config, then its New.
func kind[C any, S collector.Sink](newSink func(C) (S, error), prep func(*env, zerolog.Logger, *C)) sinkBuilder {
	return func(e *env, log zerolog.Logger, node *yaml.Node, file string, build bool) (collector.Sink, error) {
		var cfg C
		if err := collector.DecodeStrict(node, file, &cfg); err != nil {
			return nil, err
		}
		if !build {
			return nil, nil
		}
		if prep != nil {
			prep(e, log, &cfg)
		}
		s, err := newSink(cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func typeNames() string {
	var names []string
	for k := range sinkTypes() {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func runCollect(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "collect", "--config FILE [--check] | --check FILE")
	config := fs.String("config", "", "collector configuration file (YAML; see docs/examples/collector.yaml)")
	check := fs.Bool("check", false, "check the configuration file strictly and exit (reads no secret, opens nothing)")
	keyFile := signingKeyFlag(fs)
	var nf natsFlags
	nf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *config == "" && *check && fs.NArg() == 1:
		*config = fs.Arg(0)
	case fs.NArg() > 0:
		return usagef("collect: unexpected argument %q", fs.Arg(0))
	case *config == "":
		return usagef("collect: --config FILE is required")
	}
	f, err := loadCollectorFile(e, *config)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return &exitError{exitFailure}
	}
	if *check {
		parts := make([]string, len(f.Sinks))
		for i, s := range f.Sinks {
			parts[i] = s.Name + " (" + s.Type + ")"
		}
		plural := "s"
		if len(f.Sinks) == 1 {
			plural = ""
		}
		fmt.Fprintf(e.stdout, "%s: ok: %d sink%s: %s\n", *config, len(f.Sinks), plural, strings.Join(parts, ", "))
		return nil
	}
	conn, err := collectorConn(f, &nf, setFlags(fs))
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	log := newLogger(e, zerolog.InfoLevel)
	signer, err := loadSigner(*keyFile)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return collect(ctx, e, log, f, conn, signer)
}

// loadCollectorFile reads and checks a collector file, sink sections
// included.
func loadCollectorFile(e *env, name string) (*collector.File, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	f, err := collector.ParseFile(name, data)
	if err != nil {
		return nil, err
	}
	types := sinkTypes()
	var errs collector.ConfigErrors
	for _, s := range f.Sinks {
		build, ok := types[s.Type]
		if !ok {
			errs = append(errs, s.TypeErrorf(name, "unknown sink type %q (known: %s)", s.Type, typeNames()))
			continue
		}
		if _, err := build(e, zerolog.Nop(), s.Settings, name, false); err != nil {
			var ce *collector.ConfigError
			var ces collector.ConfigErrors
			switch {
			case errors.As(err, &ces):
			case errors.As(err, &ce):
				ces = collector.ConfigErrors{ce}
			default:
				ces = collector.ConfigErrors{s.Errorf(name, "%v", err)}
			}
			for _, ce := range ces {
				// The sink package sees its section only: name the field
				// from the top of the file.
				if !strings.HasPrefix(ce.Field, s.Path) {
					ce.Field = strings.TrimSuffix(s.Path+"."+s.Type+"."+ce.Field, ".")
				}
			}
			errs = append(errs, ces...)
		}
	}
	switch len(errs) {
	case 0:
		return f, nil
	case 1:
		return nil, errs[0]
	}
	return nil, errs
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// collectorConn merges the file's nats section with the command line: a
// flag given wins; the URL comes from --nats, else the file, else
// SANDTRAIL_NATS_URL or the default.
func collectorConn(f *collector.File, nf *natsFlags, set map[string]bool) (bus.ConnConfig, error) {
	n := f.NATS
	cfg := bus.ConnConfig{
		URLs: n.URLs, Name: n.Name, CredsFile: n.CredsFile, NKeySeedFile: n.NKeyFile, User: n.User,
		TLS:                  bus.TLSConfig{CAFile: n.TLS.CAFile, CertFile: n.TLS.CertFile, KeyFile: n.TLS.KeyFile, ServerName: n.TLS.ServerName},
		RetryOnFailedConnect: true,
	}
	if cfg.Name == "" {
		cfg.Name = "sandtrail-collector"
	}
	var err error
	if cfg.Password, err = secretFrom(n.PasswordFile, n.PasswordEnv); err != nil {
		return cfg, fmt.Errorf("nats password: %w", err)
	}
	if cfg.Token, err = secretFrom(n.TokenFile, n.TokenEnv); err != nil {
		return cfg, fmt.Errorf("nats token: %w", err)
	}
	flags, err := nf.config(cfg.Name)
	if err != nil {
		return cfg, err
	}
	if set["nats"] || len(cfg.URLs) == 0 {
		cfg.URLs = flags.URLs
	}
	if set["nats-creds"] {
		cfg.CredsFile = flags.CredsFile
	}
	if set["nats-nkey"] {
		cfg.NKeySeedFile = flags.NKeySeedFile
	}
	if set["nats-user"] {
		cfg.User = flags.User
	}
	if set["nats-password-file"] {
		cfg.Password = flags.Password
	}
	if set["nats-token-file"] {
		cfg.Token = flags.Token
	}
	if set["nats-ca"] {
		cfg.TLS.CAFile = flags.TLS.CAFile
	}
	if set["nats-cert"] {
		cfg.TLS.CertFile = flags.TLS.CertFile
	}
	if set["nats-key"] {
		cfg.TLS.KeyFile = flags.TLS.KeyFile
	}
	if set["nats-tls-name"] {
		cfg.TLS.ServerName = flags.TLS.ServerName
	}
	return cfg, nil
}

// secretFrom reads a secret from a file or an environment variable (the
// file parser allows at most one of them).
func secretFrom(file, envName string) (bus.Secret, error) {
	switch {
	case file != "":
		return readSecret(file)
	case envName != "":
		v, ok := os.LookupEnv(envName)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", envName)
		}
		return bus.Secret(strings.TrimSpace(v)), nil
	}
	return "", nil
}

// collect builds the sinks, connects and runs the collector until ctx
// ends, serving /metrics and /healthz if the file asks.
func collect(ctx context.Context, e *env, log zerolog.Logger, f *collector.File, conn bus.ConnConfig, signer *chain.Signer) (err error) {
	types := sinkTypes()
	var sinks []collector.SinkConfig
	defer func() {
		if err == nil {
			return
		}
		// The collector never took them over: close what was built.
		for _, s := range sinks {
			_ = s.Sink.Close(context.Background())
		}
	}()
	for _, s := range f.Sinks {
		sink, err := types[s.Type](e, log.With().Str("sink", s.Name).Logger(), s.Settings, f.Name, true)
		if err != nil {
			return fmt.Errorf("collect: sink %s (%s): %w", s.Name, s.Type, err)
		}
		sinks = append(sinks, s.SinkConfig(sink))
	}
	nc, err := bus.Connect(ctx, conn, log)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	c, err := collector.New(collector.Config{
		JetStream: js, Stream: f.NATS.Stream, DLQStream: f.NATS.DLQStream, Sinks: sinks,
		RawDataMax: f.Collector.RawDataMax, DrainTimeout: f.Collector.DrainTimeout, MaxFailing: f.Health.MaxFailing,
		Device: hostDevice(emitter.DetectHost()), Actor: &schema.Actor{Process: selfProcess()},
		ProductVersion: buildVersion(), Logger: log, Signer: signer,
	})
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	sinks = nil // the collector owns them now
	var srv *http.Server
	srvDone := make(chan error, 1)
	if addr := f.Metrics.Listen; addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			_ = c.Close(context.Background())
			return fmt.Errorf("collect: metrics: %w", err)
		}
		srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { srvDone <- srv.Serve(l) }()
		fmt.Fprintf(e.stdout, "sandtrail collect: /metrics and /healthz on http://%s\n", l.Addr())
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	names := make([]string, len(f.Sinks))
	for i, s := range f.Sinks {
		names[i] = s.Name
	}
	fmt.Fprintf(e.stdout, "sandtrail collect: exporting to %s; press Ctrl-C to stop\n", strings.Join(names, ", "))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if err := c.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-runDone; err != nil {
		errs = append(errs, err)
	}
	if srv != nil {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
		if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	fmt.Fprintln(e.stdout, "sandtrail collect: stopped")
	return errors.Join(errs...)
}

// hostDevice is the OCSF device of this host, as the emitter writes it.
func hostDevice(h emitter.Host) *schema.Device {
	if h.Hostname == "" && h.MachineID == "" {
		return nil
	}
	t := h.DeviceType
	if t == 0 {
		t = schema.DeviceTypeIDServer
	}
	return &schema.Device{
		TypeID: t, Hostname: h.Hostname, UID: h.MachineID,
		OS: &schema.OS{Name: "Linux", TypeID: schema.OSTypeIDLinux, KernelRelease: h.KernelRelease},
	}
}

// collectInProcess runs the collector of `sandtrail server --collect` on
// the embedded server at url, once the streams exist. stop ends it and
// waits for it.
func collectInProcess(ctx context.Context, e *env, log zerolog.Logger, f *collector.File, url string, streams bus.Streams, signer *chain.Signer) (stop func(), err error) {
	conn, err := collectorConn(f, &natsFlags{urls: url}, map[string]bool{"nats": true})
	if err != nil {
		return nil, err
	}
	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{url}, Name: "sandtrail-server-streams"}, log)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = bus.EnsureStreams(ctx, js, streams)
	}
	nc.Close()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	clog := log.With().Str("component", "collector").Logger()
	go func() { done <- collect(cctx, e, clog, f, conn, signer) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			log.Error().Err(err).Msg("collector")
		}
	}, nil
}
