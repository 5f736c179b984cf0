package splunk_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/splunk"
)

// TestCancel: a Write whose ctx ends mid-request returns promptly, every
// event Retry with the cause, and leaves no goroutine behind.
func TestCancel(t *testing.T) {
	sinktest.NoLeak(t)
	srv, _ := sinktest.BlockingServer(t)
	s := newSink(t, splunk.Config{URL: srv.URL})

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := s.Write(ctx, sinktest.SmallEvents(4, "cancel"))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Write returned %v after its context ended", took)
	}
	sinktest.CheckAll(t, out, 4, collector.Retry, "context deadline exceeded")

	if err := s.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestClose: Close is idempotent, Write after Close is all Retry, and a
// Close whose ctx ends cuts a running Write short (Retry, ErrClosed).
func TestClose(t *testing.T) {
	sinktest.NoLeak(t)
	srv, entered := sinktest.BlockingServer(t)
	s := newSink(t, splunk.Config{URL: srv.URL})
	sinktest.CloseDuringWrite(t, s, entered, splunk.ErrClosed.Error())
}

// TestRejectBeforeSending: an event that is not a JSON object never reaches
// the wire; the rest of the batch does.
func TestRejectBeforeSending(t *testing.T) {
	fake := newFakeHEC(testToken)
	srv := fake.start()
	defer srv.Close()
	evs := sinktest.SmallEvents(3, "notobj")
	evs[1].Data = []byte(`["not","an","object"]`)
	out := newSink(t, splunk.Config{URL: srv.URL}).Write(t.Context(), evs)
	if out[0].Status != collector.Delivered || out[1].Status != collector.Reject || out[2].Status != collector.Delivered {
		t.Errorf("outcomes %v, want delivered, reject, delivered", out)
	}
	if !strings.Contains(out[1].Reason, "not a JSON object") {
		t.Errorf("reason %q", out[1].Reason)
	}
	if n := fake.indexedCount(); n != 2 {
		t.Errorf("indexed %d, want 2", n)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.txt")
	for p, content := range map[string]string{tok: testToken, empty: " \n", notPEM: "not a certificate"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SANDTRAIL_TEST_EMPTY", "")
	for _, c := range []struct {
		name    string
		cfg     splunk.Config
		wantErr string
	}{
		{"ok", splunk.Config{URL: "https://splunk:8088", TokenFile: tok}, ""},
		{"ok with path and query", splunk.Config{URL: "http://vl:9428/insert/splunk?x=1", TokenFile: tok}, ""},
		{"no url", splunk.Config{TokenFile: tok}, "url is required"},
		{"bad scheme", splunk.Config{URL: "ftp://splunk", TokenFile: tok}, "scheme must be http or https"},
		{"no host", splunk.Config{URL: "https://", TokenFile: tok}, "no host"},
		{"credentials in url", splunk.Config{URL: "https://u:p@splunk", TokenFile: tok}, "must not carry credentials"},
		{"no token", splunk.Config{URL: "https://splunk"}, "exactly one of token_file and token_env"},
		{"two tokens", splunk.Config{URL: "https://splunk", TokenFile: tok, TokenEnv: "X"}, "exactly one of token_file and token_env"},
		{"missing token file", splunk.Config{URL: "https://splunk", TokenFile: filepath.Join(dir, "nope")}, "no such file"},
		{"empty token file", splunk.Config{URL: "https://splunk", TokenFile: empty}, "is empty"},
		{"unset env", splunk.Config{URL: "https://splunk", TokenEnv: "SANDTRAIL_TEST_UNSET_VARIABLE", LookupEnv: os.LookupEnv}, "is not set"},
		{"empty env", splunk.Config{URL: "https://splunk", TokenEnv: "SANDTRAIL_TEST_EMPTY", LookupEnv: os.LookupEnv}, "is empty"},
		{"env without lookup", splunk.Config{URL: "https://splunk", TokenEnv: "HOME"}, "no way to read the environment"},
		{"compression", splunk.Config{URL: "https://splunk", TokenFile: tok, Compression: "zstd"}, `compression "zstd"`},
		{"negative timeout", splunk.Config{URL: "https://splunk", TokenFile: tok, Timeout: -time.Second}, "must not be negative"},
		{"channel", splunk.Config{URL: "https://splunk", TokenFile: tok, Ack: splunk.AckConfig{Enabled: true, Channel: "chan-1"}}, "not a UUID"},
		{"ca not pem", splunk.Config{URL: "https://splunk", TokenFile: tok, TLS: splunk.TLSConfig{CAFile: notPEM}}, "no PEM certificate"},
		{"ca on http", splunk.Config{URL: "http://splunk", TokenFile: tok, TLS: splunk.TLSConfig{CAFile: notPEM}}, "not https"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := splunk.New(c.cfg)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = s.Close(t.Context())
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "splunk: ") {
				t.Errorf("New = %v, want an error starting with \"splunk: \" containing %q", err, c.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := newSink(t, splunk.Config{URL: "https://splunk:8088", Ack: splunk.AckConfig{Enabled: true}})
	got := s.Config()
	if got.Source != "sandtrail" || got.Compression != "gzip" || got.Timeout != 30*time.Second ||
		got.Ack.PollInterval != time.Second || got.Ack.Timeout != time.Minute || len(got.Ack.Channel) != 36 {
		t.Errorf("Config() = %v; want the documented defaults and a channel UUID", got)
	}
}

// TestNoSecretInOutput: no rendering of the sink or its config shows the
// token.
func TestNoSecretInOutput(t *testing.T) {
	t.Setenv("SANDTRAIL_TEST_HEC_TOKEN", testToken)
	cfg := splunk.Config{URL: "https://splunk:8088", TokenEnv: "SANDTRAIL_TEST_HEC_TOKEN", LookupEnv: os.LookupEnv, Index: "ocsf"}
	s := newSink(t, cfg)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("sink", "sink", s, "config", cfg)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", []any{s}),
		fmt.Sprintf("%+v", cfg), cfg.String(), logged.String(),
	} {
		if strings.Contains(out, testToken) {
			t.Errorf("output shows the token: %s", out)
		}
	}
	if want := "token=env:SANDTRAIL_TEST_HEC_TOKEN"; !strings.Contains(cfg.String(), want) {
		t.Errorf("String() = %s, want it to contain %s", cfg.String(), want)
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
// and refuses unknown keys and inline tokens, naming file, line and field.
func TestConfigYAML(t *testing.T) {
	const doc = `
url: https://splunk.example.net:8088
token_file: /etc/sandtrail/hec.token
index: ocsf
source: sandtrail
host: collector-1
sourcetype: ocsf:sandtrail
compression: none
timeout: 10s
ack:
  enabled: true
  channel: 0b8c5f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f
  poll_interval: 2s
  timeout: 90s
tls:
  ca_file: /etc/ssl/splunk-ca.pem
  insecure_skip_verify: false
`
	var got splunk.Config
	if err := decodeYAML(doc, &got); err != nil {
		t.Fatal(err)
	}
	want := splunk.Config{
		URL: "https://splunk.example.net:8088", TokenFile: "/etc/sandtrail/hec.token", Index: "ocsf", Source: "sandtrail",
		Host: "collector-1", Sourcetype: "ocsf:sandtrail", Compression: "none", Timeout: 10 * time.Second,
		Ack: splunk.AckConfig{Enabled: true, Channel: "0b8c5f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f", PollInterval: 2 * time.Second, Timeout: 90 * time.Second},
		TLS: splunk.TLSConfig{CAFile: "/etc/ssl/splunk-ca.pem"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(splunk.Config{}, "LookupEnv")); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	for _, c := range []struct{ doc, wantErr string }{
		{"url: https://x\ntoken: secret\n", "collector.yaml:2:1: token: secrets are never written inline: use token_file or token_env"},
		{"url: https://x\nack:\n  enable: true\n", "collector.yaml:3:3: ack.enable: unknown key (did you mean enabled?)"},
		{"url: https://x\ntimeout: 30\n", "collector.yaml:2:10: timeout: want a duration with a unit"},
	} {
		var cfg splunk.Config
		if err := decodeYAML(c.doc, &cfg); err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
			t.Errorf("decode %q = %v, want an error starting with %q", c.doc, err, c.wantErr)
		}
	}
}

func TestSourcetype(t *testing.T) {
	for _, c := range []struct {
		name string
		uid  int
		want string
	}{
		{"Compliance Finding", 2003, "ocsf:compliance_finding"},
		{"Device Config State Change", 5019, "ocsf:device_config_state_change"},
		{"Process Activity", 1007, "ocsf:process_activity"},
		{"  Detection   Finding ", 2004, "ocsf:detection_finding"},
		{"Application Lifecycle", 6002, "ocsf:application_lifecycle"},
		{"", 6008, "ocsf:class_6008"},
	} {
		if got := splunk.Sourcetype(c.name, c.uid); got != c.want {
			t.Errorf("Sourcetype(%q, %d) = %q, want %q", c.name, c.uid, got, c.want)
		}
	}
}
