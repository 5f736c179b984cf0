package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// Defaults of [Config].
const (
	DefaultTransport        = TransportTLS
	DefaultFacility         = "local4"
	DefaultAppName          = "sandtrail"
	DefaultEnterpriseNumber = 32473 // RFC 5612: reserved for documentation
	DefaultMaxMessageSize   = 64 << 10
	DefaultDialTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 30 * time.Second
	DefaultAcceptWait       = 250 * time.Millisecond
	DefaultBackoffMin       = 500 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second

	// MinMessageSize is the smallest MaxMessageSize accepted: the size every
	// RFC 5425 receiver must support.
	MinMessageSize = 2048
	// MaxMaxMessageSize bounds MaxMessageSize (rsyslog's octet-counted
	// frames are limited to 200000 bytes by default; NATS's to 1 MiB).
	MaxMaxMessageSize = 16 << 20
)

// Transports of [Config].Transport.
const (
	TransportTLS = "tls" // RFC 5425
	TransportTCP = "tcp" // RFC 6587, plaintext: only to a relay on the same host or a trusted network
)

// Config says where and how to send events to a syslog receiver. The zero
// value is not usable: Address is required; every other field's zero value
// means the default written in its comment.
//
// A Config holds no secret: the client key is read by [New] from
// TLS.KeyFile, and String and LogValue show only file names.
type Config struct {
	// Address is the receiver's host:port (RFC 5425's port is 6514).
	// Required.
	Address string `yaml:"address"`
	// Transport is "tls" (RFC 5425) or "tcp" (plaintext). Default "tls".
	Transport string `yaml:"transport"`
	// TLS configures the "tls" transport.
	TLS TLSConfig `yaml:"tls"`
	// Facility is the syslog facility by name: kern, user, mail, daemon,
	// auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security,
	// console, solaris-cron, local0 ... local7. Default "local4" (20).
	Facility string `yaml:"facility"`
	// Hostname is the HOSTNAME of events without a device.hostname.
	// Default: the collector's host name (os.Hostname), or "-" if unknown.
	Hostname string `yaml:"hostname"`
	// AppName is the APP-NAME, 1 to 48 printable ASCII characters.
	// Default "sandtrail".
	AppName string `yaml:"app_name"`
	// EnterpriseNumber is the IANA Private Enterprise Number in the SD-ID
	// sandtrail@<number>. Default 32473, the RFC 5612 documentation number:
	// set your organisation's own.
	EnterpriseNumber int `yaml:"enterprise_number"`
	// MaxMessageSize is the largest syslog message in bytes (the frame
	// without its length prefix), between 2048 and 16 MiB; an event whose
	// message is larger is rejected to the dead-letter stream, never
	// truncated. The receiver must accept at least this much. Default 64 KiB.
	MaxMessageSize int `yaml:"max_message_size"`
	// DialTimeout bounds connecting, including the TLS handshake.
	// Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds writing one batch. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// AcceptWait is how long a new connection is watched for the server
	// closing it (a refused client certificate) before the first batch is
	// written to it. Default 250ms; negative disables the wait.
	AcceptWait time.Duration `yaml:"accept_wait"`
	// Backoff is the pause before reconnecting after a failure; it doubles
	// after each consecutive failure up to BackoffMax. Default 500ms.
	Backoff time.Duration `yaml:"backoff"`
	// BackoffMax caps Backoff. Default 30s.
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// TLSConfig configures the "tls" transport.
type TLSConfig struct {
	// CAFile is a PEM bundle of the certificate authorities trusted for the
	// receiver's certificate. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key (PEM) for
	// mutual TLS. Both or neither. Default: no client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked against the receiver's certificate.
	// Default: the host part of Address.
	ServerName string `yaml:"server_name"`
}

// String renders the configuration on one line (file names, never keys).
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "syslog{address=%s", c.Address)
	for _, kv := range [][2]string{{"transport", c.Transport}, {"facility", c.Facility}, {"hostname", c.Hostname},
		{"app_name", c.AppName}, {"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile},
		{"tls.key_file", c.TLS.KeyFile}, {"tls.server_name", c.TLS.ServerName}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"enterprise_number", int64(c.EnterpriseNumber)}, {"max_message_size", int64(c.MaxMessageSize)}} {
		if kv.v != 0 {
			fmt.Fprintf(&b, " %s=%d", kv.k, kv.v)
		}
	}
	for _, kv := range []struct {
		k string
		v time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"write_timeout", c.WriteTimeout}, {"accept_wait", c.AcceptWait},
		{"backoff", c.Backoff}, {"backoff_max", c.BackoffMax}} {
		if kv.v != 0 {
			fmt.Fprintf(&b, " %s=%v", kv.k, kv.v)
		}
	}
	b.WriteString("}")
	return b.String()
}

// LogValue renders the configuration for log/slog, like String.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("address", c.Address),
		slog.String("transport", c.Transport),
		slog.String("facility", c.Facility),
		slog.String("tls.ca_file", c.TLS.CAFile),
		slog.String("tls.cert_file", c.TLS.CertFile),
		slog.String("tls.key_file", c.TLS.KeyFile),
		slog.String("tls.server_name", c.TLS.ServerName),
		slog.Int("max_message_size", c.MaxMessageSize),
	)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Transport == "" {
		c.Transport = DefaultTransport
	}
	if c.Facility == "" {
		c.Facility = DefaultFacility
	}
	if c.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		} else {
			c.Hostname = "-"
		}
	}
	if c.AppName == "" {
		c.AppName = DefaultAppName
	}
	if c.EnterpriseNumber == 0 {
		c.EnterpriseNumber = DefaultEnterpriseNumber
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.AcceptWait == 0 {
		c.AcceptWait = DefaultAcceptWait
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	return c
}

// facilities are the RFC 5424 facility codes by name (the names of
// rsyslog and syslog-ng).
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
	"local5": 21, "local6": 22, "local7": 23,
}

// validate checks c (with defaults applied) and returns the facility code.
func (c *Config) validate() (int, error) {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address is required"))
	} else if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("address %q: want host:port", c.Address))
	}
	if c.Transport != TransportTLS && c.Transport != TransportTCP {
		errs = append(errs, fmt.Errorf("transport %q: want %q or %q", c.Transport, TransportTLS, TransportTCP))
	}
	tlsSet := c.TLS != TLSConfig{}
	if c.Transport == TransportTCP && tlsSet {
		errs = append(errs, errors.New("tls is set but transport is \"tcp\""))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	fac, ok := facilities[strings.ToLower(c.Facility)]
	if !ok {
		errs = append(errs, fmt.Errorf("facility %q: not a syslog facility name (kern ... local7)", c.Facility))
	}
	if !printUSASCII(c.AppName, 48) {
		errs = append(errs, fmt.Errorf("app_name %q: want 1 to 48 printable ASCII characters", c.AppName))
	}
	if c.Hostname != "-" && !printUSASCII(c.Hostname, 255) {
		errs = append(errs, fmt.Errorf("hostname %q: want 1 to 255 printable ASCII characters", c.Hostname))
	}
	if c.EnterpriseNumber < 0 {
		errs = append(errs, fmt.Errorf("enterprise_number %d: must be positive", c.EnterpriseNumber))
	}
	if c.MaxMessageSize < MinMessageSize || c.MaxMessageSize > MaxMaxMessageSize {
		errs = append(errs, fmt.Errorf("max_message_size %d: want %d to %d bytes", c.MaxMessageSize, MinMessageSize, MaxMaxMessageSize))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"write_timeout", c.WriteTimeout}, {"backoff", c.Backoff}, {"backoff_max", c.BackoffMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", d.name, d.v))
		}
	}
	if c.BackoffMax < c.Backoff {
		errs = append(errs, fmt.Errorf("backoff_max %v: less than backoff %v", c.BackoffMax, c.Backoff))
	}
	return fac, errors.Join(errs...)
}

// tlsConfig builds the client TLS configuration (files are read now, so
// that New reports a missing or unreadable file).
func (c *Config) tlsConfig() (*tls.Config, error) {
	f := transport.TLSFiles{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, ServerName: c.TLS.ServerName}
	if f.ServerName == "" {
		f.ServerName, _, _ = net.SplitHostPort(c.Address)
	}
	return f.Config()
}

// printUSASCII reports whether s is 1 to max characters of RFC 5424's
// PRINTUSASCII (%d33-126).
func printUSASCII(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
