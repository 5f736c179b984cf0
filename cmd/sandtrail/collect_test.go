package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

func TestCollectCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("nats:\n  url: x\nsinks:\n  - name: s\n    type: splunk\n    splunk:\n      url: https://x\n      token: abc\n  - name: k\n    type: kafka\n  - name: n\n    type: ndjson\n    ndjson: {dir: /d, max_bytes: lots}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"collect", "--check", "../../docs/examples/collector.yaml"}, exitOK,
			"../../docs/examples/collector.yaml: ok: 6 sinks: archive (ndjson), splunk (splunk), elastic (elastic), syslog (syslog), pager (alert), console (stdout)\n", ""},
		{[]string{"collect", "--config", "../../collector/testdata/minimal.yaml", "--check"}, exitOK, "ok: 1 sink: files (ndjson)", ""},
		{[]string{"collect", "--check", bad}, exitFailure, "", strings.Join([]string{
			bad + ":2:3: nats.url: unknown key (did you mean urls?)",
		}, "\n")},
		{[]string{"collect"}, exitUsage, "", "--config FILE is required"},
		{[]string{"collect", "--config", "a", "b"}, exitUsage, "", `unexpected argument "b"`},
		{[]string{"collect", "--check", "/nonexistent.yaml"}, exitFailure, "", "no such file"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out, tc.err)
		}
	}
	// Problems in the sinks' own sections, found once the file parses.
	fixed := filepath.Join(t.TempDir(), "sections.yaml")
	os.WriteFile(fixed, []byte("sinks:\n  - name: s\n    type: splunk\n    splunk:\n      url: https://x\n      token: abc\n  - name: k\n    type: kafka\n  - name: n\n    type: ndjson\n    ndjson: {dir: /d, max_bytes: lots}\n"), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"collect", "--check", fixed}, strings.NewReader(""), &out, &errb)
	want := fixed + ":6:7: sinks[0].splunk.token: secrets are never written inline: use token_file or token_env\n" +
		fixed + ":8:11: sinks[1].type: unknown sink type \"kafka\" (known: alert, elastic, ndjson, splunk, stdout, syslog)\n" +
		fixed + ":11:34: sinks[2].ndjson.max_bytes: want a size such as 100MiB, 64KiB or 4096, got \"lots\"\n"
	if code != exitFailure || errb.String() != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", code, errb.String(), want)
	}
}

// startCmd runs a long-lived subcommand in-process; it returns the lines
// it prints and a stop function returning its exit code.
func startCmd(t *testing.T, args ...string) (lines <-chan string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	var once bool
	var code int
	stop = func() int {
		if !once {
			once = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return ch, stop
}

// waitLine returns the first group of re in the next lines matching it.
func waitLine(t *testing.T, lines <-chan string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line matching %s", re)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				if len(m) > 1 {
					return m[1]
				}
				return l
			}
		case <-timeout:
			t.Fatalf("no line matching %s", re)
		}
	}
}

func publishEvents(t *testing.T, url string, evs []collector.Event) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, ev := range evs {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.UID)); err != nil {
			t.Fatal(err)
		}
	}
}

func ndjsonUIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var ev struct {
				Metadata struct {
					UID string `json:"uid"`
				} `json:"metadata"`
			}
			if json.Unmarshal(l, &ev) == nil {
				got[ev.Metadata.UID] = true
			}
		}
	}
	return got
}

// `sandtrail server --collect FILE`: the embedded server with the
// collector in-process; and `sandtrail collect --config FILE` against it.
func TestServerCollectAndCollect(t *testing.T) {
	dir := t.TempDir()
	inproc, standalone := filepath.Join(dir, "inproc"), filepath.Join(dir, "standalone")
	cfg := func(name, sinkDir, extra string) string {
		p := filepath.Join(dir, name+".yaml")
		body := extra + "metrics: {listen: 127.0.0.1:0}\nsinks:\n  - name: " + name +
			"\n    type: ndjson\n    batch: {max_wait: 100ms}\n    filter: {classes: [2003]}\n    ndjson: {dir: " + sinkDir + "}\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines, stopServer := startCmd(t, "server", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "store"),
		"--spool", filepath.Join(dir, "spool"), "--stream-max-bytes", "67108864", "--collect", cfg("inproc", inproc, ""))
	url := waitLine(t, lines, `listening on (nats://[0-9.:]+)`)
	metrics := waitLine(t, lines, `/metrics and /healthz on (http://[0-9.:]+)`)
	waitLine(t, lines, "ready")
	go func() {
		for range lines {
		}
	}()

	clines, stopCollect := startCmd(t, "collect", "--config", cfg("standalone", standalone, "nats: {urls: ["+url+"]}\n"))
	waitLine(t, clines, "exporting to standalone;")
	go func() {
		for range clines {
		}
	}()

	evs := sinktest.Events(50)
	publishEvents(t, url, evs)
	for _, d := range []string{inproc, standalone} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := ndjsonUIDs(t, d)
			missing := 0
			for _, ev := range evs {
				if !got[ev.UID] {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d events missing", d, missing, len(evs))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	resp, err := http.Get(metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `sandtrail_collector_events_exported_total{sink="inproc"} 50`) {
		t.Errorf("/metrics:\n%s", body)
	}
	resp, err = http.Get(metrics + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", resp, err)
	}
	if code := stopCollect(); code != exitOK {
		t.Errorf("collect exited %d", code)
	}
	if code := stopServer(); code != exitOK {
		t.Errorf("server exited %d", code)
	}
}

// TestSinkSecretsFromEnv: the sinks read no environment themselves; collect
// hands each the lookup for its *_env secrets. With the variable set the
// sink is made; unset, the error names the variable (not a sink left
// without a way to read the environment).
func TestSinkSecretsFromEnv(t *testing.T) {
	for _, tc := range []struct{ typ, doc, env string }{
		{"splunk", "url: https://splunk:8088\ntoken_env: SANDTRAIL_TEST_SECRET\n", "SANDTRAIL_TEST_SECRET"},
		{"elastic", "url: https://es:9200\napi_key_env: SANDTRAIL_TEST_SECRET\n", "SANDTRAIL_TEST_SECRET"},
		{"elastic", "url: https://es:9200\nusername: u\npassword_env: SANDTRAIL_TEST_SECRET\n", "SANDTRAIL_TEST_SECRET"},
		{"alert", "url: http://am:9093\ntoken_env: SANDTRAIL_TEST_SECRET\n", "SANDTRAIL_TEST_SECRET"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			var node yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &node); err != nil {
				t.Fatal(err)
			}
			build := sinkTypes()[tc.typ]
			e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
			t.Setenv(tc.env, "c2VjcmV0")
			s, err := build(e, zerolog.Nop(), node.Content[0], "collector.yaml", true)
			if err != nil {
				t.Fatalf("with %s set: %v", tc.env, err)
			}
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			os.Unsetenv(tc.env) // t.Setenv restores it at the end
			if _, err := build(e, zerolog.Nop(), node.Content[0], "collector.yaml", true); err == nil || !strings.Contains(err.Error(), tc.env+" is not set") {
				t.Fatalf("with %s unset: got %v, want it named as not set", tc.env, err)
			}
		})
	}
}
