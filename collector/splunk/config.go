package splunk

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// Defaults of [Config].
const (
	DefaultSource          = "sandtrail"
	DefaultTimeout         = 30 * time.Second
	DefaultAckPollInterval = time.Second
	DefaultAckTimeout      = time.Minute
)

// Compression values of [Config].Compression.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Config says where and how to send events to a Splunk HTTP Event
// Collector. The zero value is not usable: URL and a token source are
// required; every other field's zero value means the default written in
// its comment.
//
// A Config holds no secret: the token is read by [New] from TokenFile or the
// environment variable named by TokenEnv, so printing or logging a Config
// (String, LogValue, %+v) shows where the token comes from, never its value.
type Config struct {
	// URL is the HEC base URL, for example https://splunk.example.net:8088;
	// /services/collector/event (and /services/collector/ack) are appended
	// to its path, and its query is kept. http or https; no user info.
	// Required.
	URL string `yaml:"url"`
	// TokenFile is a file holding the HEC token (surrounding whitespace is
	// trimmed). Exactly one of TokenFile and TokenEnv is required.
	TokenFile string `yaml:"token_file"`
	// TokenEnv is the name of an environment variable holding the token.
	TokenEnv string `yaml:"token_env"`
	// LookupEnv reads the environment variable the *_env field names
	// (cmd/sandtrail passes os.LookupEnv). Default nil: the sink reads no
	// environment, and a *_env field is an error at New.
	LookupEnv func(name string) (value string, ok bool) `yaml:"-"`
	// Index is the Splunk index of every event. Default empty: the field is
	// left out and the token's default index applies.
	Index string `yaml:"index"`
	// Source is the envelope's source. Default "sandtrail".
	Source string `yaml:"source"`
	// Host is the envelope's host for every event. Default empty: each
	// event's device.hostname, left out when the event has none (Splunk
	// then uses the sender's address).
	Host string `yaml:"host"`
	// Sourcetype is the envelope's sourcetype for every event. Default
	// empty: "ocsf:" and the event's class name in snake case
	// ("ocsf:compliance_finding"), as Splunk's OCSF add-on expects.
	Sourcetype string `yaml:"sourcetype"`
	// Compression of request bodies: "gzip" or "none". Default "gzip".
	Compression string `yaml:"compression"`
	// Timeout bounds each HTTP request (a batch, or one acknowledgement
	// poll). Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Ack configures indexer acknowledgement. Default off.
	Ack AckConfig `yaml:"ack"`
	// TLS configures https URLs.
	TLS TLSConfig `yaml:"tls"`
}

// AckConfig configures HEC indexer acknowledgement: each request carries a
// channel, each accepted batch returns an ackId, and Write reports the batch
// Delivered only once /services/collector/ack says the indexers committed it.
// The token must have indexer acknowledgement enabled.
type AckConfig struct {
	// Enabled turns acknowledgement on. Default false: an HTTP 200 with
	// code 0 is the confirmation.
	Enabled bool `yaml:"enabled"`
	// Channel is the X-Splunk-Request-Channel, a UUID. Default: a random
	// UUID chosen by New.
	Channel string `yaml:"channel"`
	// PollInterval is the pause before each acknowledgement poll.
	// Default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout is how long Write waits for the acknowledgements of a batch
	// before marking the unacknowledged events Retry. Default 1m.
	Timeout time.Duration `yaml:"timeout"`
}

// TLSConfig configures the connection to an https URL.
type TLSConfig struct {
	// CAFile is a PEM bundle of the certificate authorities trusted for
	// the server's certificate, instead of the system's. Default: the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate. Never in
	// production. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// String renders the configuration on one line, with the token's source
// (file or environment variable name), never its value.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "splunk{url=%s token=%s", c.URL, tokenSource(c))
	for _, kv := range [][2]string{{"index", c.Index}, {"source", c.Source}, {"host", c.Host}, {"sourcetype", c.Sourcetype}, {"compression", c.Compression}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if c.Timeout != 0 {
		fmt.Fprintf(&b, " timeout=%v", c.Timeout)
	}
	if c.Ack.Enabled {
		fmt.Fprintf(&b, " ack{channel=%s poll_interval=%v timeout=%v}", c.Ack.Channel, c.Ack.PollInterval, c.Ack.Timeout)
	}
	if c.TLS.CAFile != "" {
		fmt.Fprintf(&b, " tls.ca_file=%s", c.TLS.CAFile)
	}
	if c.TLS.InsecureSkipVerify {
		b.WriteString(" tls.insecure_skip_verify")
	}
	b.WriteString("}")
	return b.String()
}

// LogValue renders the configuration for log/slog, like String: the token's
// source, never its value.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("token", tokenSource(c)),
		slog.String("index", c.Index),
		slog.String("source", c.Source),
		slog.String("host", c.Host),
		slog.String("sourcetype", c.Sourcetype),
		slog.String("compression", c.Compression),
		slog.Duration("timeout", c.Timeout),
		slog.Bool("ack", c.Ack.Enabled),
		slog.String("tls.ca_file", c.TLS.CAFile),
		slog.Bool("tls.insecure_skip_verify", c.TLS.InsecureSkipVerify),
	)
}

func tokenSource(c Config) string {
	switch {
	case c.TokenFile != "" && c.TokenEnv != "":
		return "file:" + c.TokenFile + "+env:" + c.TokenEnv
	case c.TokenFile != "":
		return "file:" + c.TokenFile
	case c.TokenEnv != "":
		return "env:" + c.TokenEnv
	}
	return "none"
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Compression == "" {
		c.Compression = CompressionGzip
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Ack.PollInterval == 0 {
		c.Ack.PollInterval = DefaultAckPollInterval
	}
	if c.Ack.Timeout == 0 {
		c.Ack.Timeout = DefaultAckTimeout
	}
	return c
}

// endpoints are the parsed HEC URLs.
type endpoints struct {
	event, ack string
}

// validate checks c (with defaults applied) and returns the endpoints.
func (c *Config) validate() (endpoints, error) {
	var errs []error
	var ep endpoints
	u, err := transport.ParseURL(c.URL, "use token_file or token_env")
	if err != nil {
		errs = append(errs, err)
	} else {
		ep.event = join(u, "services/collector/event")
		ep.ack = join(u, "services/collector/ack")
	}
	if (c.TokenFile == "") == (c.TokenEnv == "") {
		errs = append(errs, errors.New("exactly one of token_file and token_env is required"))
	}
	if c.Compression != CompressionGzip && c.Compression != CompressionNone {
		errs = append(errs, fmt.Errorf("compression %q: want %q or %q", c.Compression, CompressionGzip, CompressionNone))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must not be negative", c.Timeout))
	}
	if c.Ack.PollInterval < 0 || c.Ack.Timeout < 0 {
		errs = append(errs, fmt.Errorf("ack: poll_interval %v and timeout %v must not be negative", c.Ack.PollInterval, c.Ack.Timeout))
	}
	if c.Ack.Channel != "" {
		if _, err := uuid.Parse(c.Ack.Channel); err != nil {
			errs = append(errs, fmt.Errorf("ack.channel %q: not a UUID", c.Ack.Channel))
		}
	}
	if c.TLS.CAFile != "" && u != nil && u.Scheme == "http" {
		errs = append(errs, fmt.Errorf("tls.ca_file is set but url %q is not https", c.URL))
	}
	return ep, errors.Join(errs...)
}

func join(u *url.URL, p string) string {
	v := *u
	v.Path = path.Join("/", u.Path, p)
	v.RawPath = ""
	return v.String()
}

// tlsConfig builds the client TLS configuration, or nil for the defaults.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if t.CAFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	return transport.TLSFiles{CAFile: t.CAFile, InsecureSkipVerify: t.InsecureSkipVerify}.Config()
}
