package stdout_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/stdout"
	"github.com/sandtrail/sandtrail/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// terminal is a receiver that can break: while broken, writes fail with
// EPIPE, as when the reader of a pipe went away.
type terminal struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	broken bool
}

func (w *terminal) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return 0, syscall.EPIPE
	}
	return w.buf.Write(p)
}

func (w *terminal) set(broken bool) { w.mu.Lock(); w.broken = broken; w.mu.Unlock() }

var runRE = regexp.MustCompile(` run=(\S+) `)

// read maps each line back to its event by message (they are numbered)
// and run, through the events the test wrote.
func (w *terminal) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
}

func TestConformance(t *testing.T) {
	term := &terminal{}
	// The sink prints no uid: remember which line each written event
	// became, by run and message, to give Read the uids.
	var (
		mu    sync.Mutex
		known = map[string]string{} // "run|message" -> uid
	)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := stdout.New(stdout.Config{Out: term, Color: stdout.ColorNever})
			if err != nil {
				t.Fatal(err)
			}
			return recording{s, func(ev collector.Event) {
				mu.Lock()
				known[ev.RunID+"|"+messageOf(ev.Data)] = ev.UID
				mu.Unlock()
			}}
		},
		Read: func(t *testing.T) []sinktest.Received {
			mu.Lock()
			defer mu.Unlock()
			var out []sinktest.Received
			for _, line := range term.lines() {
				m := runRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				_, msg, _ := strings.Cut(line, "  capability_bounding_set applied")
				if uid, ok := known[m[1]+"|capability_bounding_set applied"+msg]; ok {
					out = append(out, sinktest.Received{UID: uid})
				}
			}
			return out
		},
		Break:   func(*testing.T) { term.set(true) },
		Restore: func(*testing.T) { term.set(false) },
	})
}

// recording notes each event a Write was given.
type recording struct {
	*stdout.Sink
	note func(collector.Event)
}

func (r recording) Write(ctx context.Context, b []collector.Event) []collector.Outcome {
	for _, ev := range b {
		r.note(ev)
	}
	return r.Sink.Write(ctx, b)
}

func messageOf(data []byte) string {
	_, rest, _ := bytes.Cut(data, []byte(`"message":"`))
	msg, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(msg)
}

func TestLine(t *testing.T) {
	var out bytes.Buffer
	s, err := stdout.New(stdout.Config{Out: &out, UTC: true, Color: stdout.ColorNever})
	if err != nil {
		t.Fatal(err)
	}
	ev := sinktest.Events(1)[0]
	ev.Time = 1764263000123
	ev.SeverityID = 4
	ev.ClassName = "Detection Finding"
	s.Write(context.Background(), []collector.Event{ev})
	want := "2025-11-27 17:03:20.123 HIGH     Detection Finding   run=" + ev.RunID +
		" control=capability_bounding_set  capability_bounding_set applied: bounding set cleared (sinktest event 1)\n"
	if got := out.String(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestColorAndEscapes(t *testing.T) {
	ev := sinktest.Events(1)[0]
	ev.SeverityID = int(schema.SeverityIDCritical)
	ev.Data = bytes.Replace(ev.Data, []byte(`"message":"`), []byte(`"message":"\u001b[2Jgotcha\u0007 `), 1)
	for _, tc := range []struct {
		color string
		want  bool
	}{{stdout.ColorAlways, true}, {stdout.ColorNever, false}, {stdout.ColorAuto, false}} {
		var out bytes.Buffer
		s, err := stdout.New(stdout.Config{Out: &out, Color: tc.color})
		if err != nil {
			t.Fatal(err)
		}
		s.Write(context.Background(), []collector.Event{ev})
		line := out.String()
		if got := strings.Contains(line, "\x1b[1;31mCRITICAL"); got != tc.want {
			t.Errorf("color %s: coloured %v, want %v: %q", tc.color, got, tc.want, line)
		}
		if strings.Contains(line, "\x1b[2J") || strings.Contains(line, "\a") {
			t.Errorf("color %s: control characters of the event reached the output: %q", tc.color, line)
		}
		if !strings.Contains(line, `\u001b[2Jgotcha\u0007`) {
			t.Errorf("color %s: escapes not shown: %q", tc.color, line)
		}
	}
	if _, err := stdout.New(stdout.Config{Color: "sometimes"}); err == nil {
		t.Fatal("color sometimes: want an error")
	}
}

func TestWriteErrorIsRetry(t *testing.T) {
	s, _ := stdout.New(stdout.Config{Out: failWriter{}})
	for _, o := range s.Write(context.Background(), sinktest.Events(2)) {
		if o.Status != collector.Retry || !strings.Contains(o.Reason, "disk on fire") {
			t.Fatalf("got %+v", o)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }
