package elastic_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

// TestCancel: a Write whose ctx ends mid-request returns promptly, every
// event Retry with the cause, and leaves no goroutine behind.
func TestCancel(t *testing.T) {
	sinktest.NoLeak(t)
	srv, _ := sinktest.BlockingServer(t)
	s := newSink(t, elastic.Config{URL: srv.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := s.Write(ctx, sinktest.SmallEvents(4, "cancel"))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Write returned %v after its context ended", took)
	}
	sinktest.CheckAll(t, out, 4, collector.Retry, "context deadline exceeded")
}

// TestTimeout: Config.Timeout bounds each request even when ctx does not.
func TestTimeout(t *testing.T) {
	sinktest.NoLeak(t)
	srv, _ := sinktest.BlockingServer(t)
	s := newSink(t, elastic.Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "timeout")), 2, collector.Retry, "deadline exceeded")
}

// TestClose: Close is idempotent, Write after Close is all Retry, and a
// Close whose ctx ends cuts a running Write short (Retry, ErrClosed).
func TestClose(t *testing.T) {
	sinktest.NoLeak(t)
	srv, entered := sinktest.BlockingServer(t)
	s := newSink(t, elastic.Config{URL: srv.URL})
	sinktest.CloseDuringWrite(t, s, entered, elastic.ErrClosed.Error())
}

func TestNew(t *testing.T) {
	pw := writeFile(t, "pw", "s3cret")
	empty := writeFile(t, "empty", "\n")
	notPEM := writeFile(t, "ca.txt", "not a certificate")
	for _, c := range []struct {
		name    string
		cfg     elastic.Config
		wantErr string
	}{
		{"ok, no auth", elastic.Config{URL: "http://es:9200"}, ""},
		{"ok, basic", elastic.Config{URL: "https://es:9200", Username: "u", PasswordFile: pw}, ""},
		{"ok, api key", elastic.Config{URL: "https://es:9200", APIKeyFile: pw, Index: "ocsf-2025.11"}, ""},
		{"no url", elastic.Config{}, "url is required"},
		{"bad scheme", elastic.Config{URL: "es:9200"}, "scheme must be http or https"},
		{"credentials in url", elastic.Config{URL: "https://u:p@es:9200"}, "must not carry credentials"},
		{"index upper case", elastic.Config{URL: "http://es", Index: "Logs-OCSF"}, "not a valid data stream or index name"},
		{"index with space", elastic.Config{URL: "http://es", Index: "logs ocsf"}, "not a valid data stream or index name"},
		{"index starting with _", elastic.Config{URL: "http://es", Index: "_bulk"}, "not a valid data stream or index name"},
		{"username without password", elastic.Config{URL: "http://es", Username: "u"}, "exactly one of password_file and password_env"},
		{"password without username", elastic.Config{URL: "http://es", PasswordFile: pw}, "need a username"},
		{"basic and api key", elastic.Config{URL: "http://es", Username: "u", PasswordFile: pw, APIKeyFile: pw}, "at most one of basic authentication"},
		{"two api keys", elastic.Config{URL: "http://es", APIKeyFile: pw, APIKeyEnv: "K"}, "at most one of api_key_file and api_key_env"},
		{"empty password", elastic.Config{URL: "http://es", Username: "u", PasswordFile: empty}, "is empty"},
		{"unset api key env", elastic.Config{URL: "http://es", APIKeyEnv: "SANDTRAIL_TEST_UNSET_VARIABLE", LookupEnv: os.LookupEnv}, "is not set"},
		{"negative timeout", elastic.Config{URL: "http://es", Timeout: -1}, "must not be negative"},
		{"ca not pem", elastic.Config{URL: "https://es", TLS: elastic.TLSConfig{CAFile: notPEM}}, "no PEM certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := elastic.New(c.cfg)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = s.Close(t.Context())
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "elastic: ") {
				t.Errorf("New = %v, want an error starting with \"elastic: \" containing %q", err, c.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got := newSink(t, elastic.Config{URL: "http://es:9200"}).Config()
	if got.Index != "logs-ocsf.sandtrail-default" || got.Timeout != 30*time.Second || got.AddTimestamp == nil || !*got.AddTimestamp {
		t.Errorf("Config() = %v; want the documented defaults", got)
	}
}

// TestNoSecretInOutput: no rendering of the sink or its config shows the
// password or the API key.
func TestNoSecretInOutput(t *testing.T) {
	const password, key = "hunter2-password", "QUJDREVGOmFiY2RlZmdoaWprbG1ub3A="
	t.Setenv("SANDTRAIL_TEST_ES_PASSWORD", password)
	t.Setenv("SANDTRAIL_TEST_ES_KEY", key)
	for _, cfg := range []elastic.Config{
		{URL: "https://es:9200", Username: "sandtrail", PasswordEnv: "SANDTRAIL_TEST_ES_PASSWORD", LookupEnv: os.LookupEnv},
		{URL: "https://es:9200", APIKeyEnv: "SANDTRAIL_TEST_ES_KEY", LookupEnv: os.LookupEnv},
	} {
		s := newSink(t, cfg)
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("sink", "sink", s, "config", cfg)
		for _, out := range []string{
			fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", []any{s}),
			fmt.Sprintf("%+v", cfg), cfg.String(), logged.String(),
		} {
			if strings.Contains(out, password) || strings.Contains(out, key) || strings.Contains(out, "c2FuZHRyYWls") {
				t.Errorf("output shows a secret: %s", out)
			}
		}
	}
}

// decodeYAML decodes a sink section the way the collector's configuration
// does: collector.DecodeStrict on the parsed node.
func decodeYAML(doc string, out any) error {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		return err
	}
	return collector.DecodeStrict(&n, "collector.yaml", out)
}

// TestConfigYAML decodes the documented keys with collector.DecodeStrict,
// and refuses unknown keys and inline secrets, naming file, line and field.
func TestConfigYAML(t *testing.T) {
	const doc = `
url: https://es.example.net:9200
index: logs-ocsf.sandtrail-prod
add_timestamp: false
username: sandtrail
password_file: /etc/sandtrail/es.password
timeout: 1m
tls:
  ca_file: /etc/ssl/es-ca.pem
`
	var got elastic.Config
	if err := decodeYAML(doc, &got); err != nil {
		t.Fatal(err)
	}
	want := elastic.Config{
		URL: "https://es.example.net:9200", Index: "logs-ocsf.sandtrail-prod", AddTimestamp: new(false),
		Username: "sandtrail", PasswordFile: "/etc/sandtrail/es.password", Timeout: time.Minute,
		TLS: elastic.TLSConfig{CAFile: "/etc/ssl/es-ca.pem"},
	}
	if got.String() != want.String() || got.PasswordFile != want.PasswordFile || *got.AddTimestamp {
		t.Errorf("decoded\n%v\nwant\n%v", got, want)
	}
	var key elastic.Config
	if err := decodeYAML("api_key_env: ES_API_KEY\n", &key); err != nil || key.APIKeyEnv != "ES_API_KEY" {
		t.Errorf("api_key_env: %v, %v", key, err)
	}
	for _, c := range []struct{ doc, wantErr string }{
		{"url: https://x\npassword: hunter2\n", "collector.yaml:2:1: password: secrets are never written inline: use password_file or password_env"},
		{"url: https://x\napi_key: abc\n", "collector.yaml:2:1: api_key: secrets are never written inline: use api_key_file or api_key_env"},
		{"url: https://x\nindx: a\n", "collector.yaml:2:1: indx: unknown key (did you mean index?)"},
	} {
		var cfg elastic.Config
		if err := decodeYAML(c.doc, &cfg); err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
			t.Errorf("decode %q = %v, want an error starting with %q", c.doc, err, c.wantErr)
		}
	}
}
