package alert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// Defaults of [Config].
const (
	DefaultMode          = ModeWebhook
	DefaultWindow        = 2 * time.Second
	DefaultRatePerMinute = 10
	DefaultBurst         = 10
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRuns       = 10000
)

// Modes of [Config].Mode.
const (
	ModeWebhook      = "webhook"      // POST the JSON document of [Payload] to URL
	ModeAlertmanager = "alertmanager" // POST Alertmanager API v2 alerts to URL/api/v2/alerts
)

// Config says where and how to send operator alerts. The zero value is not
// usable: URL is required; every other field's zero value means the default
// written in its comment.
//
// A Config holds no secret: the bearer token is read by [New] from
// TokenFile or the environment variable named by TokenEnv, and String and
// LogValue show where it comes from, never its value.
type Config struct {
	// Mode is "webhook" or "alertmanager". Default "webhook".
	Mode string `yaml:"mode"`
	// URL is the webhook's URL, or in alertmanager mode the Alertmanager's
	// base URL (for example http://alertmanager:9093), to whose path
	// /api/v2/alerts is appended. http or https; no user info. Required.
	URL string `yaml:"url"`
	// TokenFile is a file holding a bearer token sent as
	// "Authorization: Bearer <token>" (surrounding whitespace trimmed).
	// At most one of TokenFile and TokenEnv. Default: no Authorization.
	TokenFile string `yaml:"token_file"`
	// TokenEnv is the name of an environment variable holding the token.
	TokenEnv string `yaml:"token_env"`
	// LookupEnv reads the environment variable the *_env field names
	// (cmd/sandtrail passes os.LookupEnv). Default nil: the sink reads no
	// environment, and a *_env field is an error at New.
	LookupEnv func(name string) (value string, ok bool) `yaml:"-"`
	// Window is how long the sink gathers a run's alerting events before it
	// sends the run's one alert, unless the run's posture or launch event
	// arrives first. Negative: no gathering across batches (each batch's
	// events of a run make one alert). Default 2s.
	Window time.Duration `yaml:"window"`
	// RatePerMinute is the token bucket's refill rate: how many alerts may
	// be sent per minute in the long run. Default 10.
	RatePerMinute int `yaml:"rate_per_minute"`
	// Burst is the bucket's size: how many alerts may be sent at once
	// after a quiet period. Default 10.
	Burst int `yaml:"burst"`
	// Timeout bounds each HTTP request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// GeneratorURL, when set, links each alert back to its run: the run id
	// (URL-escaped) is appended to it, for example
	// "https://grafana.example.net/d/sandtrail?var-run=". Alertmanager
	// shows it as the alert's source. Default: no link.
	GeneratorURL string `yaml:"generator_url"`
	// Labels are added to every alert (Alertmanager labels; in webhook
	// mode the alert's "labels"), for example cluster or environment.
	// Names match [a-zA-Z_][a-zA-Z0-9_]* and must not be one the sink sets
	// (alertname, run, host, policy, severity). Default: none.
	Labels map[string]string `yaml:"labels"`
	// MaxRuns bounds the runs gathered at once; beyond it a run's alert is
	// sent without waiting for the window. Default 10000.
	MaxRuns int `yaml:"max_runs"`
	// TLS configures https URLs.
	TLS TLSConfig `yaml:"tls"`
	// Now is the clock for the window and the rate limit. Default time.Now.
	Now func() time.Time `yaml:"-"`
}

// TLSConfig configures the connection to an https URL.
type TLSConfig struct {
	// CAFile is a PEM bundle of the certificate authorities trusted for the
	// server's certificate. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (PEM) for
	// mutual TLS. Both or neither. Default: none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// String renders the configuration on one line, with the token's source
// (file or environment variable name), never its value.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "alert{mode=%s url=%s token=%s", c.Mode, c.URL, tokenSource(c))
	if c.Window != 0 {
		fmt.Fprintf(&b, " window=%v", c.Window)
	}
	if c.RatePerMinute != 0 || c.Burst != 0 {
		fmt.Fprintf(&b, " rate_per_minute=%d burst=%d", c.RatePerMinute, c.Burst)
	}
	if c.Timeout != 0 {
		fmt.Fprintf(&b, " timeout=%v", c.Timeout)
	}
	if c.GeneratorURL != "" {
		fmt.Fprintf(&b, " generator_url=%s", c.GeneratorURL)
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " labels.%s=%s", k, c.Labels[k])
	}
	if c.MaxRuns != 0 {
		fmt.Fprintf(&b, " max_runs=%d", c.MaxRuns)
	}
	for _, kv := range [][2]string{{"tls.ca_file", c.TLS.CAFile}, {"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	b.WriteString("}")
	return b.String()
}

// LogValue renders the configuration for log/slog, like String.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mode", c.Mode),
		slog.String("url", c.URL),
		slog.String("token", tokenSource(c)),
		slog.Duration("window", c.Window),
		slog.Int("rate_per_minute", c.RatePerMinute),
		slog.Int("burst", c.Burst),
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

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.RatePerMinute == 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRuns == 0 {
		c.MaxRuns = DefaultMaxRuns
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ownLabels are the labels the sink sets on every alert.
var ownLabels = []string{"alertname", "run", "host", "policy", "severity"}

// validate checks c (with defaults applied) and returns the URL to POST to.
func (c *Config) validate() (string, error) {
	var errs []error
	var endpoint string
	u, err := transport.ParseURL(c.URL, "use token_file or token_env")
	if err != nil {
		errs = append(errs, err)
	} else {
		endpoint = c.URL
		if c.Mode == ModeAlertmanager {
			v := *u
			v.Path = path.Join("/", u.Path, "api/v2/alerts")
			v.RawPath = ""
			endpoint = v.String()
		}
	}
	if c.Mode != ModeWebhook && c.Mode != ModeAlertmanager {
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeWebhook, ModeAlertmanager))
	}
	if c.TokenFile != "" && c.TokenEnv != "" {
		errs = append(errs, errors.New("token_file and token_env: set at most one"))
	}
	if c.RatePerMinute < 0 || c.Burst < 0 {
		errs = append(errs, fmt.Errorf("rate_per_minute %d and burst %d: must be positive", c.RatePerMinute, c.Burst))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must not be negative", c.Timeout))
	}
	if c.MaxRuns < 0 {
		errs = append(errs, fmt.Errorf("max_runs %d: must be positive", c.MaxRuns))
	}
	if c.GeneratorURL != "" {
		if g, err := url.Parse(c.GeneratorURL); err != nil || (g.Scheme != "http" && g.Scheme != "https") {
			errs = append(errs, fmt.Errorf("generator_url %q: want an http or https URL", c.GeneratorURL))
		}
	}
	for k := range c.Labels {
		if !labelName.MatchString(k) || slices.Contains(ownLabels, k) {
			errs = append(errs, fmt.Errorf("labels: %q: want [a-zA-Z_][a-zA-Z0-9_]*, not one of %s", k, strings.Join(ownLabels, ", ")))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	if c.TLS != (TLSConfig{}) && u != nil && u.Scheme == "http" {
		errs = append(errs, fmt.Errorf("tls is set but url %q is not https", c.URL))
	}
	return endpoint, errors.Join(errs...)
}

// readToken reads the bearer token from a file or an environment variable,
// or returns "" when neither is set.
func readToken(file, env string, lookup transport.LookupEnv) (transport.Secret, error) {
	if file == "" && env == "" {
		return "", nil
	}
	s, err := transport.ReadSecret(file, env, lookup)
	switch {
	case err != nil && file != "":
		return "", fmt.Errorf("token_file: %w", err)
	case err != nil:
		return "", fmt.Errorf("token_env: %w", err)
	}
	return transport.Secret(s), nil
}

// tlsConfig builds the client TLS configuration, or nil for the defaults.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if t == (TLSConfig{}) {
		return nil, nil
	}
	return transport.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}.Config()
}
