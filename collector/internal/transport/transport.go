// Package transport is the plumbing the collector's network sinks share:
// secrets read from a file or (through the lookup the program hands over)
// the environment and held in a type that never prints, client TLS configurations built from certificate files, and the
// HTTP helpers of the sinks that POST (a client, bounded response reads,
// the cause of a cancelled request, Retry-After).
//
// It holds no sink logic: what a response means stays with each sink. Sink
// packages import it; nothing outside collector can.
package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a credential (a token, a key, an Authorization header value).
// Every rendering (String, GoString, fmt verbs, text marshalling, slog)
// shows "[REDACTED]"; only string(s) reveals it.
type Secret string

const redacted = "[REDACTED]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Header returns the Authorization header value "<scheme> <secret>".
func (s Secret) Header(scheme string) string { return scheme + " " + string(s) }

// LookupEnv reads an environment variable, as os.LookupEnv does. Sinks
// never read the environment themselves: only the program decides to (see
// STYLE: only cmd/sandtrail reads flags, env and config files), and hands
// them os.LookupEnv through their Config.
type LookupEnv func(name string) (string, bool)

// ReadSecret reads a secret from file when it is set, else from the
// environment variable env through lookup, trimming surrounding
// whitespace. An unreadable file, an unset variable, an empty secret and
// a variable without a lookup are errors; the caller checked that one of
// file and env is set.
func ReadSecret(file, env string, lookup LookupEnv) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s is empty", file)
		}
		return s, nil
	}
	if lookup == nil {
		return "", fmt.Errorf("environment variable %s: this sink was given no way to read the environment (Config.LookupEnv)", env)
	}
	s, ok := lookup(env)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set", env)
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("environment variable %s is empty", env)
	}
	return s, nil
}

// TLSFiles are the parts of a client TLS configuration a sink's config
// names; each zero field means the default.
type TLSFiles struct {
	CAFile             string // PEM bundle of trusted roots; default the system's
	CertFile, KeyFile  string // client certificate and key (PEM); both or neither
	ServerName         string // name checked against the server's certificate
	InsecureSkipVerify bool
}

// Config builds the client TLS configuration (TLS 1.2 at least), reading
// the files now so that a sink's New reports a missing or unreadable one.
// Errors name the config fields: tls.ca_file, tls (client certificate).
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s: %w", f.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
