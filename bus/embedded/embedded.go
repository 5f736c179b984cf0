// Package embedded runs a NATS server, JetStream always on, inside the
// calling process: for single-binary deployments and for tests that need a
// real server over TCP.
//
// [Start] returns once the server accepts connections (and has opened its
// route listener, when clustered); [Server.Shutdown] returns once it has
// stopped. The server never installs signal handlers and logs through the
// zerolog.Logger of its [Config].
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// Defaults of [Config].
const (
	DefaultListen       = "127.0.0.1:4222"
	DefaultStartTimeout = 10 * time.Second
)

// Config describes an embedded server. Fields left zero take the value the
// ConfigFile gives them, if any, else their default. A non-zero field
// overrides the ConfigFile.
type Config struct {
	// Listen is the client address, host:port. Port 0 picks a free port
	// (read it back with ClientURL). Default 127.0.0.1:4222.
	Listen string
	// StoreDir is where JetStream keeps its files. Required, here or in
	// the ConfigFile (store_dir): there is no silent default under /tmp.
	StoreDir string
	// MonitorAddr is the HTTP monitoring address, host:port (port 0 picks
	// a free port). Default: no monitoring endpoint.
	MonitorAddr string
	// ConfigFile is a nats-server configuration file, for TLS,
	// authorization, accounts and limits; loaded with
	// server.ProcessConfigFile. Its debug and trace settings turn on the
	// server's debug and trace logs. Default: none.
	ConfigFile string
	// ServerName names the server; required for a JetStream cluster.
	// Default: the server's generated ID.
	ServerName string
	// Cluster joins the server to a cluster. Default: standalone.
	Cluster Cluster
	// StartTimeout bounds how long Start waits for the server to accept
	// connections, within the context's deadline. Default 10s.
	StartTimeout time.Duration
	// Logger receives the server's logs, with component=nats-server.
	// The zero value discards them.
	Logger zerolog.Logger
}

// Cluster configures the routes of a clustered server. The zero value
// means no cluster.
type Cluster struct {
	// Name of the cluster; the same on every node.
	Name string
	// Listen is the route address, host:port; port 0 picks a free port
	// (read it back with RouteURL).
	Listen string
	// Routes are the other nodes' route URLs (nats-route://host:port, or
	// host:port). Listing one node that is already up is enough: the
	// others are discovered.
	Routes []string
}

func (c Cluster) enabled() bool { return c.Name != "" || c.Listen != "" || len(c.Routes) > 0 }

// Server is a running embedded NATS server.
type Server struct {
	ns  *server.Server
	log *logAdapter
}

// Start starts a server as cfg says and waits until it accepts
// connections, for at most cfg.StartTimeout and never past ctx. On any
// error the server is shut down before Start returns.
//
// In a cluster, accepting connections does not mean JetStream is usable:
// its API answers "temporarily unavailable" until the nodes have elected a
// meta leader; callers retry.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: start: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: new server: %w", err)
	}
	la := &logAdapter{log: cfg.Logger.With().Str("component", "nats-server").Str("server", ns.Name()).Logger()}
	ns.SetLoggerV2(la, opts.Debug, opts.Trace, false)
	s := &Server{ns: ns, log: la}

	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ns.Start()
	for !ns.ReadyForConnections(25 * time.Millisecond) {
		if fatal := la.fatal.Load(); fatal != nil {
			s.shutdown()
			return nil, fmt.Errorf("embedded: start %s: %s", ns.Name(), *fatal)
		}
		if ctx.Err() != nil {
			s.shutdown()
			return nil, fmt.Errorf("embedded: start %s: not ready for connections: %w", ns.Name(), context.Cause(ctx))
		}
	}
	return s, nil
}

// options turns cfg into server options.
func (cfg Config) options() (*server.Options, error) {
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("embedded: config file: %w", err)
		}
	}
	if cfg.StartTimeout < 0 {
		return nil, fmt.Errorf("embedded: negative StartTimeout %s", cfg.StartTimeout)
	}
	listen := cfg.Listen
	if listen == "" && opts.Port == 0 && opts.Host == "" {
		listen = DefaultListen
	}
	if listen != "" {
		host, port, err := splitHostPort("Listen", listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.MonitorAddr != "" {
		host, port, err := splitHostPort("MonitorAddr", cfg.MonitorAddr)
		if err != nil {
			return nil, err
		}
		opts.HTTPHost, opts.HTTPPort = host, port
	}
	if cfg.StoreDir != "" {
		opts.StoreDir = cfg.StoreDir
	}
	if opts.StoreDir == "" {
		return nil, errors.New("embedded: StoreDir is required (JetStream is always on)")
	}
	if cfg.ServerName != "" {
		opts.ServerName = cfg.ServerName
	}
	if cfg.Cluster.enabled() {
		if err := cfg.Cluster.apply(opts); err != nil {
			return nil, err
		}
		if opts.ServerName == "" {
			return nil, errors.New("embedded: ServerName is required in a JetStream cluster")
		}
	}
	opts.JetStream = true
	opts.NoSigs = true // only cmd/sandtrail handles signals
	opts.DisableJetStreamBanner = true
	return opts, nil
}

func (c Cluster) apply(opts *server.Options) error {
	if c.Name == "" {
		return errors.New("embedded: Cluster.Name is required")
	}
	if c.Listen == "" {
		return errors.New("embedded: Cluster.Listen is required")
	}
	host, port, err := splitHostPort("Cluster.Listen", c.Listen)
	if err != nil {
		return err
	}
	opts.Cluster.Name = c.Name
	opts.Cluster.Host, opts.Cluster.Port = host, port
	routes := make([]*url.URL, 0, len(c.Routes))
	for _, r := range c.Routes {
		if !strings.Contains(r, "://") {
			r = "nats-route://" + r
		}
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("embedded: Cluster.Routes: invalid route %q", r)
		}
		routes = append(routes, u)
	}
	if len(routes) > 0 {
		opts.Routes = routes
	}
	return nil
}

// splitHostPort parses host:port; port 0 becomes the server's "random
// port" value.
func splitHostPort(field, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("embedded: %s %q: %w", field, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("embedded: %s %q: invalid port", field, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ClientURL returns the URL clients connect to, nats:// or tls://, with the
// port actually bound.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// RouteURL returns the URL other nodes list in Cluster.Routes to join this
// one, or "" when the server is not clustered.
func (s *Server) RouteURL() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + addr.String()
}

// MonitorURL returns the base URL of the monitoring endpoint, or "" when
// there is none.
func (s *Server) MonitorURL() string {
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Name returns the server name (its ID when no name was configured).
func (s *Server) Name() string { return s.ns.Name() }

// Shutdown stops the server: it closes client and route connections,
// steps down from any JetStream leadership and flushes the store, then
// waits until the server has stopped. If ctx ends first, Shutdown returns
// its error and the stop completes in the background. Calling Shutdown
// again is safe.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.shutdown()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded: shutdown %s: %w", s.ns.Name(), context.Cause(ctx))
	}
}

func (s *Server) shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
