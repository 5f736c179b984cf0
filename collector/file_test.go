package collector_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
)

func TestParseExampleFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 2 {
		t.Fatalf("example configs missing: %v", files)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := collector.ParseFile(name, data)
		if err != nil {
			t.Fatalf("%v", err)
		}
		for _, s := range f.Sinks {
			if s.Settings == nil && s.Type != "stdout" {
				t.Errorf("%s: sink %s has no %s section", name, s.Name, s.Type)
			}
		}
	}
	data, _ := os.ReadFile("testdata/collector.yaml")
	f, _ := collector.ParseFile("collector.yaml", data)
	var names []string
	for _, s := range f.Sinks {
		names = append(names, s.Name+":"+s.Type)
	}
	if want := []string{"archive:ndjson", "splunk:splunk", "elastic:elastic", "syslog:syslog", "pager:alert", "console:stdout"}; !slices.Equal(names, want) {
		t.Errorf("sinks %v, want %v", names, want)
	}
	sc := f.Sinks[1].SinkConfig(nil)
	want := collector.SinkConfig{Name: "splunk", Type: "splunk", Filter: collector.Filter{MinSeverity: 2}, MaxEvents: 256, MaxWait: 2 * time.Second,
		MaxDeliver: 20, AckWait: 30 * time.Second, RetryMin: time.Second, RetryMax: time.Minute}
	if diff := cmp.Diff(want, sc); diff != "" {
		t.Errorf("splunk sink config (-want +got):\n%s", diff)
	}
	if f.Metrics.Listen != "127.0.0.1:9464" || f.Health.MaxFailing != 5*time.Minute || f.NATS.CredsFile != "/etc/sandtrail/collector.creds" {
		t.Errorf("file %+v", f)
	}
	// The docs example is the same file.
	docs, err := os.ReadFile("../docs/examples/collector.yaml")
	if err != nil || string(docs) != string(data) {
		t.Errorf("docs/examples/collector.yaml and collector/testdata/collector.yaml differ")
	}
}

func TestParseFileErrors(t *testing.T) {
	const sink = "sinks:\n  - name: files\n    type: ndjson\n"
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"unknown top key", "natz: {}\n" + sink, []string{"c.yaml:1:1: natz: unknown key (did you mean nats?)"}},
		{"unknown nats key", "nats:\n  url: nats://x\n" + sink, []string{"c.yaml:2:3: nats.url: unknown key (did you mean urls?)"}},
		{"inline password", "nats:\n  user: u\n  password: hunter2\n" + sink,
			[]string{"c.yaml:3:3: nats.password: secrets are never written inline: use password_file or password_env"}},
		{"inline token", "nats:\n  token: abc\n" + sink, []string{"c.yaml:2:3: nats.token: secrets are never written inline: use token_file or token_env"}},
		{"no sinks", "metrics: {listen: 127.0.0.1:9464}\n", []string{"c.yaml:1:1: sinks: no sinks: the collector needs at least one"}},
		{"sinks not a list", "sinks: {name: x}\n", []string{"c.yaml:1:8: sinks: want a list, got a mapping"}},
		{"no type", "sinks:\n  - name: files\n", []string{"c.yaml:2:5: sinks[0].type: missing: every sink has a type (ndjson, stdout, splunk, elastic, syslog, alert)"}},
		{"unknown sink key", sink + "    batch_size: 3\n", []string{"c.yaml:4:5: sinks[0].batch_size: unknown key (known: ack_wait, batch, filter, max_deliver, name, retry, type)"}},
		{"section of another type", sink + "    splunk: {url: x}\n", []string{"c.yaml:4:5: sinks[0].splunk: unknown key (known: ack_wait, batch, filter, max_deliver, name, retry, type)"}},
		{"section not a mapping", sink + "    ndjson: [a]\n", []string{"c.yaml:4:13: sinks[0].ndjson: want a mapping of ndjson settings, got a list"}},
		{"bare duration", sink + "    batch: {max_wait: 5}\n", []string{"c.yaml:4:23: sinks[0].batch.max_wait: want a duration with a unit, such as 30s or 5m, got the integer 5"}},
		{"bad duration", "health: {max_failing: soon}\n" + sink, []string{"c.yaml:1:23: health.max_failing: want a duration with a unit, such as 30s or 5m, got \"soon\""}},
		{"string for int", sink + "    max_deliver: many\n", []string{"c.yaml:4:18: sinks[0].max_deliver: want an integer, got \"many\""}},
		{"unknown class", sink + "    filter: {classes: [2003, 3002]}\n", []string{"c.yaml:4:30: sinks[0].filter.classes[1]: class 3002 is not a sandtrail class"}},
		{"severity range", sink + "    filter: {min_severity: 9}\n", []string{"c.yaml:4:28: sinks[0].filter.min_severity: want 1 (Informational) to 6 (Fatal), or 0 for all, got 9"}},
		{"duplicate names", sink + "  - name: files\n    type: stdout\n", []string{"c.yaml:4:11: sinks[1].name: two sinks named files (first is sinks[0])"}},
		{"bad name", "sinks:\n  - name: my files\n    type: ndjson\n", []string{"c.yaml:2:11: sinks[0].name: want 1 to 64 letters, digits, '-' or '_', got \"my files\""}},
		{"duplicate key", sink + "    name: again\n", []string{"c.yaml:4:5: sinks[0].name: duplicate key (first at line 2)"}},
		{"max_wait over ack_wait/3", sink + "    ack_wait: 3s\n    batch: {max_wait: 2s}\n", []string{"c.yaml:2:5: sinks[0]: batch.max_wait 2s: want at most ack_wait/3 (1s)"}},
		{"alias", "x: &a {}\nnats: *a\n" + sink, []string{"c.yaml:1:1: x: unknown key (known: collector, health, metrics, nats)", "c.yaml:2:7: nats: aliases are not allowed"}},
		{"listen", "metrics: {listen: 9464}\n" + sink, []string{"c.yaml:1:19: metrics.listen: want host:port, got \"9464\""}},
		{"user without password", "nats: {user: u}\n" + sink, []string{"c.yaml:1:7: nats: user and password_file (or password_env) go together"}},
		{"two documents", sink + "---\n" + sink, []string{"c.yaml:4: more than one YAML document"}},
		{"syntax", "sinks: [\n", []string{"c.yaml:1: did not find expected node content"}},
		{"several", "natz: 1\nhealth: {max_failing: x}\n" + sink, []string{"c.yaml:1:1: natz: unknown key (did you mean nats?)",
			"c.yaml:2:23: health.max_failing: want a duration with a unit, such as 30s or 5m, got \"x\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collector.ParseFile("c.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
			var ce *collector.ConfigError
			if !errors.As(err, &ce) || ce.File != "c.yaml" {
				t.Errorf("not a *ConfigError naming the file: %#v", err)
			}
		})
	}
}

// settings is a sink Config as the other sink packages write them.
type settings struct {
	URL       string             `yaml:"url"`
	TokenFile string             `yaml:"token_file"`
	TokenEnv  string             `yaml:"token_env"`
	Timeout   time.Duration      `yaml:"timeout"`
	MaxBody   collector.ByteSize `yaml:"max_body"`
	TLS       struct {
		CAFile string `yaml:"ca_file"`
	} `yaml:"tls"`
	Labels  map[string]string `yaml:"labels"`
	Headers []string          `yaml:"headers"`
	Retries *int              `yaml:"retries"`
	Common  `yaml:",inline"`
	Skipped func() `yaml:"-"`
}

type Common struct {
	Index string `yaml:"index"`
}

func TestDecodeStrict(t *testing.T) {
	decode := func(src string) (settings, error) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		var s settings
		err := collector.DecodeStrict(&doc, "s.yaml", &s)
		return s, err
	}
	s, err := decode("url: https://x\ntoken_file: /t\ntimeout: 1m30s\nmax_body: 5MiB\ntls: {ca_file: /ca}\nlabels: {a: b}\nheaders: [x, y]\nretries: 0\nindex: sec\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "https://x" || s.TokenFile != "/t" || s.Timeout != 90*time.Second || s.MaxBody != 5<<20 || s.TLS.CAFile != "/ca" ||
		s.Labels["a"] != "b" || !slices.Equal(s.Headers, []string{"x", "y"}) || s.Retries == nil || *s.Retries != 0 || s.Index != "sec" {
		t.Fatalf("decoded %+v", s)
	}
	for _, tc := range []struct{ src, want string }{
		{"token: abc\n", "s.yaml:1:1: token: secrets are never written inline: use token_file or token_env"},
		{"urll: x\n", "s.yaml:1:1: urll: unknown key (did you mean url?)"},
		{"tls: {ca: x}\n", "s.yaml:1:7: tls.ca: unknown key (known: ca_file)"},
		{"timeout: 30\n", "s.yaml:1:10: timeout: want a duration with a unit, such as 30s or 5m, got the integer 30"},
		{"max_body: lots\n", "s.yaml:1:11: max_body: want a size such as 100MiB, 64KiB or 4096, got \"lots\""},
		{"headers: x\n", "s.yaml:1:10: headers: want a list, got \"x\""},
		{"labels: [a]\n", "s.yaml:1:9: labels: want a mapping, got a list"},
		{"retries: 1.5\n", "s.yaml:1:10: retries: want an integer, got the number 1.5"},
		{"url: !!binary aGk=\n", ""},
		{"url: !custom x\n", "s.yaml:1:6: url: unsupported tag !custom"},
		{"skipped: x\n", "s.yaml:1:1: skipped: unknown key (known: headers, index, labels, max_body, retries, timeout, tls, token_env, token_file, url)"},
	} {
		_, err := decode(tc.src)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.src, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
	var s2 settings
	if err := collector.DecodeStrict(nil, "s.yaml", &s2); err != nil {
		t.Errorf("nil node: %v", err)
	}
	if err := collector.DecodeStrict(nil, "s.yaml", s2); err == nil {
		t.Error("non-pointer: want an error")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]collector.ByteSize{"512": 512, "64KiB": 64 << 10, "100MiB": 100 << 20, "1GiB": 1 << 30, "2 MB": 2 << 20, "7B": 7} {
		var s collector.ByteSize
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%q: got %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "10XB"} {
		var s collector.ByteSize
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q: got %d, want an error", in, s)
		}
	}
	if got := collector.ByteSize(100 << 20).String(); got != "100MiB" {
		t.Errorf("String: %s", got)
	}
}
