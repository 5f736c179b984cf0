package elastic

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// Defaults of [Config].
const (
	DefaultIndex   = "logs-ocsf.sandtrail-default"
	DefaultTimeout = 30 * time.Second
)

// Config says where and how to send events to Elasticsearch or OpenSearch.
// The zero value is not usable: URL is required; every other field's zero
// value means the default written in its comment.
//
// A Config holds no secret: the password or API key is read by [New] from
// a file or the environment variable it names, so printing or logging a
// Config (String, LogValue, %+v) shows where a secret comes from, never its
// value.
type Config struct {
	// URL is the cluster's base URL, for example https://es.example.net:9200;
	// /_bulk is appended to its path, and its query is kept (so
	// ?pipeline=NAME selects an ingest pipeline). http or https; no user
	// info. Required.
	URL string `yaml:"url"`
	// Index is the data stream (or index, or alias) every event is created
	// in. Default "logs-ocsf.sandtrail-default", which matches
	// Elasticsearch's built-in logs-*-* data stream template.
	Index string `yaml:"index"`
	// AddTimestamp adds "@timestamp" to each document, the event's OCSF
	// time (ms since the epoch) as RFC 3339 in UTC with milliseconds
	// ("2025-11-26T15:13:21.000Z"), written as the document's first
	// member; the rest of the event is unchanged. Data streams reject a
	// document without @timestamp, and OCSF names its time "time". Set it
	// to false for a plain index, or when an ingest pipeline sets
	// @timestamp. Default (nil) true.
	AddTimestamp *bool `yaml:"add_timestamp"`
	// Username and PasswordFile or PasswordEnv authenticate with HTTP
	// basic authentication. The password file's surrounding whitespace is
	// trimmed. At most one of basic authentication and an API key.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// APIKeyFile or APIKeyEnv hold an API key in its encoded form (the
	// base64 "encoded" value Elasticsearch returns), sent as
	// "Authorization: ApiKey <key>".
	APIKeyFile string `yaml:"api_key_file"`
	APIKeyEnv  string `yaml:"api_key_env"`
	// LookupEnv reads the environment variables the *_env fields name
	// (cmd/sandtrail passes os.LookupEnv). Default nil: the sink reads no
	// environment, and a *_env field is an error at New.
	LookupEnv func(name string) (value string, ok bool) `yaml:"-"`
	// Timeout bounds each bulk request. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures https URLs.
	TLS TLSConfig `yaml:"tls"`
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

// String renders the configuration on one line, with each secret's source
// (file or environment variable name), never its value.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "elastic{url=%s index=%s add_timestamp=%t auth=%s", c.URL, c.Index, c.addTimestamp(), authSource(c))
	if c.Timeout != 0 {
		fmt.Fprintf(&b, " timeout=%v", c.Timeout)
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

// LogValue renders the configuration for log/slog, like String.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("index", c.Index),
		slog.Bool("add_timestamp", c.addTimestamp()),
		slog.String("auth", authSource(c)),
		slog.Duration("timeout", c.Timeout),
		slog.String("tls.ca_file", c.TLS.CAFile),
		slog.Bool("tls.insecure_skip_verify", c.TLS.InsecureSkipVerify),
	)
}

func (c Config) addTimestamp() bool { return c.AddTimestamp == nil || *c.AddTimestamp }

func authSource(c Config) string {
	var parts []string
	if c.Username != "" || c.PasswordFile != "" || c.PasswordEnv != "" {
		p := "basic:" + c.Username
		if c.PasswordFile != "" {
			p += " password=file:" + c.PasswordFile
		}
		if c.PasswordEnv != "" {
			p += " password=env:" + c.PasswordEnv
		}
		parts = append(parts, p)
	}
	if c.APIKeyFile != "" {
		parts = append(parts, "api_key=file:"+c.APIKeyFile)
	}
	if c.APIKeyEnv != "" {
		parts = append(parts, "api_key=env:"+c.APIKeyEnv)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Index == "" {
		c.Index = DefaultIndex
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.AddTimestamp = new(c.addTimestamp()) // a copy: the caller keeps its pointer
	return c
}

// validate checks c (with defaults applied) and returns the bulk URL.
func (c *Config) validate() (string, error) {
	var errs []error
	var bulk string
	u, err := transport.ParseURL(c.URL, "use username and password_file or api_key_file")
	if err != nil {
		errs = append(errs, err)
	} else {
		v := *u
		v.Path = path.Join("/", u.Path, "_bulk")
		v.RawPath = ""
		bulk = v.String()
	}
	if strings.ContainsAny(c.Index, "\"\\ ,#*?<>|/") || strings.HasPrefix(c.Index, "_") || strings.HasPrefix(c.Index, "-") || c.Index != strings.ToLower(c.Index) {
		errs = append(errs, fmt.Errorf("index %q: not a valid data stream or index name (lowercase; no spaces or \\/*?\"<>|,#; not starting with _ or -)", c.Index))
	}
	basic := c.Username != "" || c.PasswordFile != "" || c.PasswordEnv != ""
	if basic {
		if c.Username == "" {
			errs = append(errs, errors.New("password_file/password_env need a username"))
		}
		if (c.PasswordFile == "") == (c.PasswordEnv == "") {
			errs = append(errs, errors.New("username needs exactly one of password_file and password_env"))
		}
	}
	apiKey := c.APIKeyFile != "" || c.APIKeyEnv != ""
	if apiKey && c.APIKeyFile != "" && c.APIKeyEnv != "" {
		errs = append(errs, errors.New("at most one of api_key_file and api_key_env"))
	}
	if basic && apiKey {
		errs = append(errs, errors.New("at most one of basic authentication (username) and an API key"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must not be negative", c.Timeout))
	}
	if c.TLS.CAFile != "" && u != nil && u.Scheme == "http" {
		errs = append(errs, fmt.Errorf("tls.ca_file is set but url %q is not https", c.URL))
	}
	return bulk, errors.Join(errs...)
}

// tlsConfig builds the client TLS configuration, or nil for the defaults.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if t.CAFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	return transport.TLSFiles{CAFile: t.CAFile, InsecureSkipVerify: t.InsecureSkipVerify}.Config()
}
