package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/collector"
)

// syncBuffer is an io.Writer safe for the concurrent writes of loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger returns a debug logger whose output is shown if the test fails.
func testLogger(t testing.TB) zerolog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log output:\n%s", buf)
		}
	})
	return zerolog.New(buf).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// env is a running embedded server with sandtrail's streams and a client.
type env struct {
	srv *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

// startEnv starts an embedded server over TCP. maxPayload > 0 raises the
// server's max_payload (through a config file, as an operator would).
func startEnv(t testing.TB, maxPayload int) *env {
	t.Helper()
	cfg := embedded.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: testLogger(t).Level(zerolog.WarnLevel)}
	if maxPayload > 0 {
		conf := filepath.Join(t.TempDir(), "nats.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, "max_payload: %d\n", maxPayload), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.ConfigFile = conf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	e := &env{srv: srv}
	e.nc, e.js = connect(t, srv.ClientURL())
	if err := bus.EnsureStreams(ctx, e.js, bus.Streams{Events: bus.StreamConfig{MaxBytes: 1 << 30}, DLQ: bus.StreamConfig{MaxBytes: 1 << 30}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{url}, Name: "collector-test"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// publish publishes valid events with their uid as message id.
func (e *env) publish(t testing.TB, evs []collector.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, ev := range evs {
		f, err := e.js.PublishMsgAsync(&nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.UID))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-ctx.Done():
			t.Fatal("publish: no acknowledgement")
		}
	}
}

// publishRaw publishes bytes as they are.
func (e *env) publishRaw(t testing.TB, subject string, data []byte) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := e.js.Publish(ctx, subject, data)
	if err != nil {
		t.Fatalf("publish %d bytes: %v", len(data), err)
	}
	return ack.Sequence
}

// streamMsgs returns every message of a stream, in order.
func (e *env) streamMsgs(t testing.TB, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

// newCollector builds a collector with test-friendly timings, closed at
// the end of the test, and starts Run. It returns the collector and a
// function that stops it and waits for Run.
func newCollector(t testing.TB, e *env, cfg collector.Config) (*collector.Collector, func()) {
	t.Helper()
	cfg.JetStream = e.js
	cfg.Logger = testLogger(t)
	if cfg.LagInterval == 0 {
		cfg.LagInterval = 100 * time.Millisecond
	}
	for i := range cfg.Sinks {
		s := &cfg.Sinks[i]
		if s.MaxWait == 0 {
			s.MaxWait = 100 * time.Millisecond
		}
		if s.RetryMin == 0 {
			s.RetryMin = 50 * time.Millisecond
		}
		if s.RetryMax == 0 {
			s.RetryMax = 500 * time.Millisecond
		}
	}
	c, err := collector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer ccancel()
			if err := c.Close(cctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// memSink keeps what it is given. fail, if set, decides each outcome.
type memSink struct {
	mu     sync.Mutex
	got    []collector.Event
	fail   func(ev collector.Event) collector.Outcome
	writes atomic.Int64
	closed atomic.Bool
	delay  time.Duration
}

func (m *memSink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	m.writes.Add(1)
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return collector.RetryAll(len(batch), ctx.Err().Error(), 0)
		}
	}
	outs := make([]collector.Outcome, len(batch))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, ev := range batch {
		if m.fail != nil {
			outs[i] = m.fail(ev)
		}
		if outs[i].Status == collector.Delivered {
			ev.Data = bytes.Clone(ev.Data)
			m.got = append(m.got, ev)
		}
	}
	return outs
}

func (m *memSink) Close(context.Context) error { m.closed.Store(true); return nil }

func (m *memSink) events() []collector.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

// flaky wraps a sink; while down, every write fails as if the receiver
// were unreachable.
type flaky struct {
	collector.Sink
	down atomic.Bool
}

func (f *flaky) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	if f.down.Load() {
		return collector.RetryAll(len(batch), "flaky: receiver unreachable", 20*time.Millisecond)
	}
	return f.Sink.Write(ctx, batch)
}

// line is one event read back from an ndjson directory.
type line struct {
	UID string
	Run string
	Seq int
}

// readNDJSON reads every event line under dir.
func readNDJSON(t testing.TB, dir string) []line {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	slices.Sort(files)
	var out []line
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = b[:bytes.LastIndexByte(b, '\n')+1] // the sink may be writing the last line right now
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var ev struct {
				Metadata struct {
					UID            string `json:"uid"`
					CorrelationUID string `json:"correlation_uid"`
					Sequence       int    `json:"sequence"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, line{ev.Metadata.UID, ev.Metadata.CorrelationUID, ev.Metadata.Sequence})
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the value of a counter or gauge from the registry; the
// labels must match exactly those given.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// checkOrderPerRun fails unless, within each run, sequences appear in
// increasing order (duplicates aside), and returns the duplicate count.
func checkOrderPerRun(t testing.TB, lines []line) (dups int) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int{}
	for i, l := range lines {
		if seen[l.UID] {
			dups++
			continue
		}
		seen[l.UID] = true
		if l.Seq <= last[l.Run] {
			t.Fatalf("line %d: run %s seq %d after seq %d: out of order", i, l.Run, l.Seq, last[l.Run])
		}
		last[l.Run] = l.Seq
	}
	return dups
}

func uids(evs []collector.Event) map[string]bool {
	m := map[string]bool{}
	for _, ev := range evs {
		m[ev.UID] = true
	}
	return m
}

func hasAll(lines []line, want map[string]bool) (missing int) {
	got := map[string]bool{}
	for _, l := range lines {
		got[l.UID] = true
	}
	for u := range want {
		if !got[u] {
			missing++
		}
	}
	return missing
}
