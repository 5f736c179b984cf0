package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

func runServer(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "server", "[--listen ADDR] [--store DIR] [--monitor ADDR] [--config FILE] [--collect FILE]")
	listen := fs.String("listen", embedded.DefaultListen, "client address host:port (port 0 picks a free one)")
	store := fs.String("store", filepath.Join(stateDir(), "nats"), "JetStream store directory")
	monitor := fs.String("monitor", "", "HTTP monitoring address host:port (default: none)")
	config := fs.String("config", "", "nats-server configuration file for TLS, authorization and limits")
	name := fs.String("name", "", "server name (required in a cluster)")
	spoolDir := fs.String("spool", defaultSpool(), "spool directory for the server's own lifecycle events (env "+envSpool+")")
	maxBytes := fs.Int64("stream-max-bytes", bus.DefaultMaxBytes, "events stream size limit in bytes (-1: unlimited)")
	maxAge := fs.Duration("stream-max-age", bus.DefaultMaxAge, "events stream age limit (-1: unlimited)")
	keyFile := signingKeyFlag(fs)
	collectFile := fs.String("collect", "", "also run the collector in-process, configured by FILE (its nats URLs are replaced by this server's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("server: unexpected argument %q", fs.Arg(0))
	}
	var cfile *collector.File
	if *collectFile != "" {
		f, err := loadCollectorFile(e, *collectFile)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return &exitError{exitFailure}
		}
		cfile = f
	}
	log := newLogger(e, zerolog.InfoLevel)
	srv, err := embedded.Start(ctx, embedded.Config{
		Listen: *listen, StoreDir: *store, MonitorAddr: *monitor, ConfigFile: *config, ServerName: *name,
		Logger: log.With().Str("component", "nats-server").Logger().Level(zerolog.WarnLevel),
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Error().Err(err).Msg("shut down the NATS server")
		}
	}()
	fmt.Fprintf(e.stdout, "sandtrail server: NATS (JetStream) listening on %s, store %s\n", srv.ClientURL(), *store)
	if u := srv.MonitorURL(); u != "" {
		fmt.Fprintf(e.stdout, "sandtrail server: monitoring on %s\n", u)
	}
	signer, err := loadSigner(*keyFile)
	if err != nil {
		return err
	}
	streams := bus.Streams{Events: bus.StreamConfig{MaxBytes: *maxBytes, MaxAge: *maxAge}}
	if cfile != nil {
		stop, err := collectInProcess(ctx, e, log, cfile, srv.ClientURL(), streams, signer)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		defer stop() // before the NATS server shuts down
	}
	return serve(ctx, e, log, srv.ClientURL(), *spoolDir, signer, streams)
}

// serve connects to the server, ensures the streams, and records the
// server's life as Application Lifecycle events until ctx ends.
func serve(ctx context.Context, e *env, log zerolog.Logger, url, spoolDir string, signer *chain.Signer, streams bus.Streams) error {
	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{url}, Name: "sandtrail-server"}, log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second)) // never leave a publish pending forever
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, streams); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	em, err := emitter.New(emitter.Config{
		Spool: spool.Config{Dir: spoolDir}, Publisher: js, Host: emitter.DetectHost(),
		ProductVersion: buildVersion(), Logger: log, Signer: signer,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- em.Run(runCtx) }()
	trail := em.Trail("server-" + newRunID())
	errs := []error{}
	if err := trail.Emit(ctx, lifecycleEvent("sandtrail server", schema.ApplicationLifecycleActivityIDStart, true, "SERVER_STARTED",
		"sandtrail server started: NATS on "+url)); err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintln(e.stdout, "sandtrail server: ready; press Ctrl-C to stop")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := trail.End(sctx, lifecycleEvent("sandtrail server", schema.ApplicationLifecycleActivityIDStop, true, "SERVER_STOPPED",
		"sandtrail server stopping")); err != nil {
		errs = append(errs, err)
	}
	if err := em.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	stopRun()
	if err := <-runDone; err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintln(e.stdout, "sandtrail server: stopped")
	return errors.Join(errs...)
}
