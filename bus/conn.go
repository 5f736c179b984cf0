package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Defaults of [ConnConfig].
const (
	DefaultURL              = "nats://127.0.0.1:4222"
	DefaultConnName         = "sandtrail"
	DefaultConnectTimeout   = 2 * time.Second
	DefaultReconnectWait    = 250 * time.Millisecond
	DefaultMaxReconnectWait = 10 * time.Second
)

// Sentinels for the causes a caller may want to tell apart. Errors returned
// by [Connect] wrap one of them (and the nats.go error underneath).
var (
	// ErrAuthorization: the server rejected the credentials.
	ErrAuthorization = errors.New("bus: authorization failed")
	// ErrTLS: the TLS handshake failed (certificate name mismatch, unknown
	// authority, client certificate refused, TLS required or unavailable).
	ErrTLS = errors.New("bus: TLS handshake failed")
	// ErrNoServer: no server answered at first connect.
	ErrNoServer = errors.New("bus: no NATS server reachable")
)

// ConnConfig says how to reach NATS. The zero value connects to
// nats://127.0.0.1:4222 without TLS or authentication. At most one of
// CredsFile, NKeySeedFile, User/Password and Token may be set.
//
// Secrets are of type [Secret], so printing or logging a ConnConfig never
// shows them.
type ConnConfig struct {
	// URLs of the servers, tried in random order; nats://, tls://, ws:// or
	// wss://, or host:port meaning nats://. A URL must not carry
	// credentials: use User/Password or Token. Default [DefaultURL].
	URLs []string
	// Name is the connection name the server shows in its monitoring.
	// Default "sandtrail".
	Name string
	// TLS is off unless one of its fields is set, a URL uses tls:// or the
	// server requires it.
	TLS TLSConfig
	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string
	// NKeySeedFile is a file holding a user nkey seed.
	NKeySeedFile string
	// User and Password authenticate with a user name and password; both
	// or neither.
	User     string
	Password Secret
	// Token authenticates with a bearer token.
	Token Secret
	// RetryOnFailedConnect makes Connect succeed even when no server is
	// reachable: the connection keeps trying in the background. Meanwhile
	// core publishes are buffered (nats.go's 8 MB reconnect buffer) and
	// JetStream publishes wait for their acknowledgement as usual. A
	// server that answers and refuses (authorization, TLS) still fails
	// Connect: that is a configuration error, not an outage. For daemons.
	// Default false: the first connect fails with ErrNoServer.
	RetryOnFailedConnect bool
	// ConnectTimeout bounds each dial and handshake. Default 2s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause after the first pass over all servers
	// failed; it doubles after each further failed pass, up to
	// MaxReconnectWait, and is jittered (half fixed, half random).
	// Reconnection never gives up. Default 250ms.
	ReconnectWait time.Duration
	// MaxReconnectWait caps the backoff. Default 10s.
	MaxReconnectWait time.Duration
}

// TLSConfig holds the TLS files. Certificates and keys are re-read at each
// (re)connection, so rotating the files needs no restart.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs trusted for the server
	// certificate. Default: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key, for
	// servers that verify clients; both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name the server certificate must carry. Default:
	// the host of the URL connected to.
	ServerName string
}

func (t TLSConfig) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// authMethod names the configured authentication, for logs.
func (c ConnConfig) authMethod() string {
	switch {
	case c.CredsFile != "":
		return "creds"
	case c.NKeySeedFile != "":
		return "nkey"
	case c.User != "" || c.Password.IsSet():
		return "user_password"
	case c.Token.IsSet():
		return "token"
	}
	return "none"
}

// withDefaults validates c and returns it with defaults filled in.
func (c ConnConfig) withDefaults() (ConnConfig, error) {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	urls := make([]string, len(c.URLs))
	for i, raw := range c.URLs {
		u, err := checkURL(raw)
		if err != nil {
			return c, err
		}
		urls[i] = u
	}
	c.URLs = urls
	if c.Name == "" {
		c.Name = DefaultConnName
	}
	methods := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeySeedFile != "", c.User != "" || c.Password.IsSet(), c.Token.IsSet()} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return c, errors.New("bus: set only one of CredsFile, NKeySeedFile, User/Password and Token")
	}
	if (c.User == "") != (c.Password == "") {
		return c, errors.New("bus: User and Password go together")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return c, errors.New("bus: TLS.CertFile and TLS.KeyFile go together")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ConnectTimeout", &c.ConnectTimeout, DefaultConnectTimeout},
		{"ReconnectWait", &c.ReconnectWait, DefaultReconnectWait},
		{"MaxReconnectWait", &c.MaxReconnectWait, DefaultMaxReconnectWait},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("bus: %s is negative (%s)", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MaxReconnectWait < c.ReconnectWait {
		return c, fmt.Errorf("bus: MaxReconnectWait %s is below ReconnectWait %s", c.MaxReconnectWait, c.ReconnectWait)
	}
	return c, nil
}

// checkURL validates one server URL and returns it with a scheme.
func checkURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the input, which may hold a password.
		return "", errors.New("bus: malformed server URL")
	}
	if u.User != nil {
		return "", fmt.Errorf("bus: server URL %s carries credentials: use User/Password or Token", u.Redacted())
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return "", fmt.Errorf("bus: server URL %s: scheme %q is not nats, tls, ws or wss", u, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("bus: server URL %s has no host", u)
	}
	return u.String(), nil
}

// Connect connects to NATS as cfg says and returns the connection. It logs
// connection events (disconnects, reconnects, asynchronous errors such as
// permission violations) through logger; secrets never reach the log.
//
// The connection reconnects forever, with exponential backoff and jitter
// (even after repeated authorization errors), until the caller closes it. ctx bounds the first connect only (dials are
// cancelled with it; a TLS handshake under way is bounded by
// ConnectTimeout); later reconnects do not depend on it.
//
// Errors wrap [ErrAuthorization], [ErrTLS] or [ErrNoServer] when the cause
// is one of those, and say what to check.
func Connect(ctx context.Context, cfg ConnConfig, logger zerolog.Logger) (*nats.Conn, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	urls := strings.Join(c.URLs, ",")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", urls, err)
	}
	log := logger.With().Str("component", "nats").Str("conn_name", c.Name).Logger()

	d := &dialer{ctx: ctx}
	d.Timeout = c.ConnectTimeout
	defer d.release()

	opts, err := c.options(log, d)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(urls, opts...)
	if err == nil {
		return nc, nil // the connect handler logs it
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", urls, ctxErr)
	}
	err = connectError(urls, c.ConnectTimeout, err)
	if !c.RetryOnFailedConnect || !errors.Is(err, ErrNoServer) {
		return nil, err
	}
	// Unreachable, and the caller wants to wait for the server: connect
	// again in retry mode, which returns at once and keeps trying.
	log.Warn().Err(err).Msg("nats unreachable, retrying in the background")
	nc, err = nats.Connect(urls, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, connectError(urls, c.ConnectTimeout, err)
	}
	return nc, nil
}

// options turns c into nats.go options.
func (c ConnConfig) options(log zerolog.Logger, d *dialer) ([]nats.Option, error) {
	minWait, maxWait := c.ReconnectWait, c.MaxReconnectWait
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.Timeout(c.ConnectTimeout),
		nats.SetCustomDialer(d),
		nats.MaxReconnects(-1),
		// Keep trying after repeated auth errors too: credentials fixed on
		// the server side (a config reload) must not need a restart here.
		nats.IgnoreAuthErrorAbort(),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return backoff(attempts, minWait, maxWait) }),
		// No reconnect buffer: a publish while disconnected fails at once
		// instead of being sent later, ahead of the retries of what the
		// old connection lost. sandtrail's publishers keep their own
		// durable spool and retry in order.
		nats.ReconnectBufSize(-1),
	}
	if c.TLS.enabled() {
		// Secure first: RootCAs and ClientCert keep this tls.Config.
		opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}))
		if c.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(c.TLS.CAFile))
		}
		if c.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(c.TLS.CertFile, c.TLS.KeyFile))
		}
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("bus: nkey seed file %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	case c.Token.IsSet():
		opts = append(opts, nats.Token(c.Token.Reveal()))
	}
	return append(opts, logHandlers(log, c.authMethod())...), nil
}

// logHandlers log the connection's life. nats.go calls them on the
// connection's own callback goroutine, which ends when it is closed.
func logHandlers(log zerolog.Logger, auth string) []nats.Option {
	return []nats.Option{
		nats.ConnectHandler(func(nc *nats.Conn) {
			_, tlsErr := nc.TLSConnectionState()
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("server", nc.ConnectedServerName()).
				Str("auth", auth).Bool("tls", tlsErr == nil).Msg("nats connected")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				log.Debug().Msg("nats disconnected")
				return
			}
			log.Warn().Err(err).Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("server", nc.ConnectedServerName()).Msg("nats reconnected")
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug().Err(err).Msg("nats reconnect attempt failed")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			ev := log.Info()
			if err := nc.LastError(); err != nil {
				ev = ev.Err(err)
			}
			ev.Msg("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats asynchronous error")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn().Str("server", nc.ConnectedServerName()).Msg("nats server entering lame duck mode")
		}),
		nats.DiscoveredServersHandler(func(nc *nats.Conn) {
			log.Debug().Strs("servers", nc.DiscoveredServers()).Msg("nats discovered servers")
		}),
	}
}

// connectError names the cause of a failed first connect.
func connectError(urls string, timeout time.Duration, err error) error {
	var (
		nameErr x509.HostnameError
		authErr x509.UnknownAuthorityError
		certErr x509.CertificateInvalidError
		opErr   *net.OpError
	)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		return fmt.Errorf("%w: connect to %s (check User/Password, Token, NKeySeedFile or CredsFile): %w", ErrAuthorization, urls, err)
	case errors.As(err, &nameErr):
		return fmt.Errorf("%w: certificate/name mismatch: connect to %s (the server certificate does not list the name connected to; set TLS.ServerName to a name it lists, or fix its SANs): %w", ErrTLS, urls, err)
	case errors.As(err, &authErr):
		return fmt.Errorf("%w: certificate signed by an unknown authority: connect to %s (set TLS.CAFile to the CA that signed the server certificate): %w", ErrTLS, urls, err)
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: invalid server certificate: connect to %s: %w", ErrTLS, urls, err)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("%w: the server requires TLS: connect to %s (use a tls:// URL or set TLS fields): %w", ErrTLS, urls, err)
	case errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("%w: the server does not offer TLS: connect to %s: %w", ErrTLS, urls, err)
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert received from the peer this way.
		return fmt.Errorf("%w: the server refused the TLS session: connect to %s (if it verifies clients, set TLS.CertFile and TLS.KeyFile to a certificate its CA signed): %w", ErrTLS, urls, err)
	case errors.Is(err, nats.ErrTLS):
		return fmt.Errorf("%w: connect to %s (if the server verifies clients, set TLS.CertFile and TLS.KeyFile to a certificate its CA signed): %w", ErrTLS, urls, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("%w: connect to %s (is nats-server running and listening there? daemons may set RetryOnFailedConnect): %w", ErrNoServer, urls, err)
	}
	if strings.Contains(err.Error(), "expected 'PONG', got 'PING'") {
		// The server's first PING (after 2s) overtook its reply to CONNECT.
		return fmt.Errorf("bus: connect to %s: the server took over 2s to accept the connection (overloaded, or a costly bcrypt password check?): %w", urls, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("%w: connect to %s (no answer within ConnectTimeout %s): %w", ErrNoServer, urls, timeout, err)
	}
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: connect to %s: %w", ErrNoServer, urls, err)
	}
	return fmt.Errorf("bus: connect to %s: %w", urls, err)
}

// backoff returns the pause after the attempt-th failed pass over the
// servers (attempt counts from 1): lo doubled attempt-1 times, capped at
// hi, of which the upper half is random so that clients restarted
// together do not reconnect in step.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return d - half + rand.N(half+1)
}

// dialer dials with the context of Connect during the first connect, and
// with no context afterwards: cancelling the caller's context must not cut
// later reconnects.
type dialer struct {
	net.Dialer

	mu  sync.Mutex
	ctx context.Context // nil once Connect returned
}

// Dial implements nats.CustomDialer.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	return d.DialContext(ctx, network, address)
}

// release detaches the dialer from the caller's context.
func (d *dialer) release() {
	d.mu.Lock()
	d.ctx = nil
	d.mu.Unlock()
}
