package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
)

// Environment variables read by the commands.
const (
	envNATSURL = "SANDTRAIL_NATS_URL"
	envSpool   = "SANDTRAIL_SPOOL"
	envLog     = "SANDTRAIL_LOG" // log level: debug, info, warn, error
	envKey     = "SANDTRAIL_SIGNING_KEY"
)

// signingKeyFlag registers --signing-key (env SANDTRAIL_SIGNING_KEY).
func signingKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("signing-key", os.Getenv(envKey), "ed25519 key (seed in hex or base64, nkey seed, or PKCS #8 PEM) that signs each run's last event (env "+envKey+"); default: trails are chained but unsigned")
}

// loadSigner loads the signing key named by --signing-key, if any.
func loadSigner(path string) (*chain.Signer, error) {
	if path == "" {
		return nil, nil
	}
	return chain.LoadSigner(path)
}

// natsFlags are the connection flags of every command that talks to NATS.
type natsFlags struct {
	urls         string
	credsFile    string
	nkeyFile     string
	user         string
	passwordFile string
	tokenFile    string
	caFile       string
	certFile     string
	keyFile      string
	serverName   string
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	def := os.Getenv(envNATSURL)
	if def == "" {
		def = bus.DefaultURL
	}
	fs.StringVar(&n.urls, "nats", def, "NATS server URLs, comma-separated (env "+envNATSURL+")")
	fs.StringVar(&n.credsFile, "nats-creds", "", "NATS credentials file (JWT and nkey)")
	fs.StringVar(&n.nkeyFile, "nats-nkey", "", "NATS nkey seed file")
	fs.StringVar(&n.user, "nats-user", "", "NATS user name (with --nats-password-file)")
	fs.StringVar(&n.passwordFile, "nats-password-file", "", "file holding the NATS password")
	fs.StringVar(&n.tokenFile, "nats-token-file", "", "file holding the NATS token")
	fs.StringVar(&n.caFile, "nats-ca", "", "CA certificate file for TLS to NATS")
	fs.StringVar(&n.certFile, "nats-cert", "", "client certificate file for TLS to NATS")
	fs.StringVar(&n.keyFile, "nats-key", "", "client key file for TLS to NATS")
	fs.StringVar(&n.serverName, "nats-tls-name", "", "expected server name in the NATS server's certificate")
}

// config turns the flags into a bus.ConnConfig; secrets come only from files.
func (n *natsFlags) config(name string) (bus.ConnConfig, error) {
	cfg := bus.ConnConfig{
		Name:         name,
		CredsFile:    n.credsFile,
		NKeySeedFile: n.nkeyFile,
		User:         n.user,
		TLS:          bus.TLSConfig{CAFile: n.caFile, CertFile: n.certFile, KeyFile: n.keyFile, ServerName: n.serverName},
	}
	for _, u := range strings.Split(n.urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.URLs = append(cfg.URLs, u)
		}
	}
	if n.passwordFile != "" {
		p, err := readSecret(n.passwordFile)
		if err != nil {
			return cfg, err
		}
		cfg.Password = p
	}
	if n.tokenFile != "" {
		t, err := readSecret(n.tokenFile)
		if err != nil {
			return cfg, err
		}
		cfg.Token = t
	}
	return cfg, nil
}

func readSecret(path string) (bus.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return bus.Secret(strings.TrimSpace(string(b))), nil
}

// stateDir is where a user's sandtrail state lives: /var/lib/sandtrail for
// root, else $XDG_STATE_HOME/sandtrail or ~/.local/state/sandtrail.
func stateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/sandtrail"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sandtrail")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "sandtrail")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("sandtrail-%d", os.Geteuid()))
}

// defaultSpool is the spool directory unless --spool or SANDTRAIL_SPOOL say otherwise.
func defaultSpool() string {
	if d := os.Getenv(envSpool); d != "" {
		return d
	}
	return filepath.Join(stateDir(), "spool")
}

// newLogger writes human-readable logs to stderr at the level of
// SANDTRAIL_LOG, default info (daemons) or warn (commands that share the
// terminal with a sandboxed program).
func newLogger(e *env, level zerolog.Level) zerolog.Logger {
	if l, err := zerolog.ParseLevel(os.Getenv(envLog)); err == nil && os.Getenv(envLog) != "" {
		level = l
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: e.stderr, NoColor: noColor(e)}).Level(level).With().Timestamp().Logger()
}

// noColor: colours only on a terminal, and never with NO_COLOR set.
func noColor(e *env) bool {
	if os.Getenv("NO_COLOR") != "" {
		return true
	}
	f, ok := e.stderr.(*os.File)
	if !ok {
		return true
	}
	fi, err := f.Stat()
	return err != nil || fi.Mode()&os.ModeCharDevice == 0
}
