package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/replay"
)

// replayStream publishes run-a (40 events from 09:00, a second apart) and
// run-b (20 events from 10:00), run-b's last event unsealed-final (the run
// is still going).
func replayStream(t *testing.T) (srv *testServer, pub string, runA, runB [][]byte) {
	t.Helper()
	signer, pub := trailKey(t)
	runA = sealedTrail(t, "run-a", 40, signer, trailStart)
	runB = sealedTrail(t, "run-b", 21, signer, trailStart.Add(time.Hour))[:20]
	srv = startTestServer(t)
	srv.publish(t, slices.Concat(runA, runB))
	return srv, pub, runA, runB
}

func TestReplayOutputs(t *testing.T) {
	srv, pub, runA, runB := replayStream(t)

	t.Run("ndjson by time range", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "", "replay", "--nats", srv.url, "--since", "2026-11-24T09:00:05Z", "--until", "2026-11-24T09:00:08Z")
		want := string(bytes.Join(runA[5:8], []byte("\n"))) + "\n"
		if code != 0 || stdout != want {
			t.Errorf("exit %d, stderr %q\ngot:\n%.300s\nwant events 6-8 of run-a as published", code, stderr, stdout)
		}
	})
	t.Run("ndjson by run", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "", "replay", "--nats", srv.url, "--run", "run-b")
		if code != 0 || stdout != string(bytes.Join(runB, []byte("\n")))+"\n" {
			t.Errorf("exit %d: run-b not replayed exactly", code)
		}
	})
	t.Run("class and severity", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "", "replay", "--nats", srv.url, "--class", "detection_finding,1007", "--severity", "high")
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) == 0 || lines[0] == "" {
			t.Fatalf("exit %d, no events", code)
		}
		for _, l := range lines {
			env, err := replay.ParseEnvelope([]byte(l))
			if err != nil || (env.ClassUID != 2004 && env.ClassUID != 1007) || env.SeverityID < 4 || env.SeverityID == 99 {
				t.Errorf("replayed %+v (%v), want class 2004 or 1007, severity >= 4", env, err)
			}
		}
	})
	t.Run("re-export to a sink, twice, idempotent by uid", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "collector.yaml")
		out := filepath.Join(dir, "out")
		if err := os.WriteFile(cfg, []byte("sinks:\n  - name: refill\n    type: ndjson\n    ndjson:\n      dir: "+out+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			code, _, stderr := runCLI(t, "", "replay", "--nats", srv.url, "--run", "run-a", "--to", cfg)
			if code != 0 || !strings.Contains(stderr, "sink refill: 40 delivered") {
				t.Fatalf("replay --to: exit %d, stderr %q", code, stderr)
			}
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.ndjson"))
		uids := map[string]int{}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				env, err := replay.ParseEnvelope([]byte(l))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				uids[env.UID]++
			}
		}
		// The ndjson sink appends what it is given: the second replay
		// writes each event again with the same metadata.uid, which is how
		// a consumer of the files recognises the copies.
		if len(uids) != 40 {
			t.Errorf("re-exported %d distinct events, want the 40 of run-a", len(uids))
		}
	})
	t.Run("text", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "", "replay", "--nats", srv.url, "--format", "text", "--run", "run-a", "--until", "2026-11-24T09:00:02Z")
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if code != 0 || len(lines) != 2 {
			t.Fatalf("exit %d, %d lines:\n%s", code, len(lines), stdout)
		}
		env, _ := replay.ParseEnvelope(runA[1])
		for _, w := range []string{"2026-11-24T09:00:01.000Z", env.Host, className(env.ClassUID, ""), env.EventCode, "run-a#2"} {
			if !strings.Contains(lines[1], w) {
				t.Errorf("text line %q lacks %q", lines[1], w)
			}
		}
	})
	t.Run("summary", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "", "replay", "--nats", srv.url, "--format", "summary", "--key", pub)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		for _, w := range []string{"RUN", "TRAIL", "run-a", "complete, signed", "run-b", "incomplete: no final event", "2 runs"} {
			if !strings.Contains(stdout, w) {
				t.Errorf("summary lacks %q:\n%s", w, stdout)
			}
		}
		if strings.Index(stdout, "run-a") > strings.Index(stdout, "run-b") {
			t.Errorf("runs not in time order:\n%s", stdout)
		}
		_, stdout, _ = runCLI(t, "", "replay", "--nats", srv.url, "--format", "summary", "--since", "2026-11-24T09:00:30Z")
		if !strings.Contains(stdout, "TRAIL covers only the events selected") || !strings.Contains(stdout, "Signatures not checked") {
			t.Errorf("filtered summary lacks its notes:\n%s", stdout)
		}
	})
}

func TestReplayUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"replay", "--to", "no-such-collector.yaml"}, 1, "no-such-collector.yaml"},
		{[]string{"replay", "--severity", "extreme"}, 2, `--severity "extreme"`},
		{[]string{"replay", "--class", "bogus"}, 2, `--class "bogus"`},
		{[]string{"replay", "--since", "2026-11-25", "--until", "2026-11-24"}, 2, "is not after since"},
		{[]string{"replay", "--format", "xml"}, 2, `unknown format "xml"`},
		{[]string{"replay", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"replay", "--nats", "127.0.0.1:1"}, 1, "no NATS server reachable"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%v: exit %d, %s%s; want %d and %q", tt.args, code, stdout, stderr, tt.code, tt.want)
		}
	}
	srv := startTestServer(t)
	code, _, stderr := runCLI(t, "", "replay", "--nats", srv.url, "--stream", "NOPE")
	if code != 1 || !strings.Contains(stderr, "no such stream: NOPE") {
		t.Errorf("missing stream: exit %d, %s", code, stderr)
	}
}

// cancelOnWrite cancels a context at its first write, as Ctrl-C would in
// the middle of a long replay.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func TestReplayInterrupted(t *testing.T) {
	signer, _ := trailKey(t)
	var events [][]byte
	for r := range 6 {
		events = append(events, sealedTrail(t, "run-"+string(rune('a'+r)), 100, signer, trailStart)...)
	}
	srv := startTestServer(t)
	srv.publish(t, events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errb bytes.Buffer
	code := run(ctx, []string{"replay", "--nats", srv.url}, strings.NewReader(""), out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "replay interrupted:") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	lines := bytes.Split(bytes.TrimSuffix(out.buf.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) == 0 || len(lines) >= len(events) || !bytes.HasSuffix(out.buf.Bytes(), []byte("\n")) {
		t.Fatalf("%d lines written of %d", len(lines), len(events))
	}
	for i, l := range lines {
		if !bytes.Equal(l, events[i]) {
			t.Fatalf("line %d is not event %d whole", i+1, i+1)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"now":                       now,
		"2026-11-24T09:00:00Z":      time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC),
		"2026-11-24T09:00:00+02:00": time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC),
		"2026-11-24T09:00:00.5Z":    time.Date(2026, 11, 24, 9, 0, 0, 5e8, time.UTC),
		"2026-11-24 09:30":          time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC),
		"2026-11-24":                time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"1d12h":                     now.Add(-36 * time.Hour),
	} {
		got, err := parseTime("since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-5m", "5x", "2026-13-01", "d"} {
		if _, err := parseTime("since", in, now); err == nil {
			t.Errorf("parseTime(%q) succeeded", in)
		}
	}
}

var _ io.Writer = (*cancelOnWrite)(nil)
