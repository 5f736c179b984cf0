package emitter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

// benchEvent is one of the benchmark's Compliance Findings.
type benchEvent struct {
	name    string
	base    schema.ComplianceFinding // decoded from testdata/bench
	encoded []byte                   // the same event as the emitter publishes it
	subject string
}

func loadBenchEvents(b *testing.B) []benchEvent {
	b.Helper()
	var out []benchEvent
	for _, c := range []struct{ name, file string }{{"1k7", "compliance_1k7.json"}, {"5k", "compliance_5k.json"}} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "bench", c.file))
		if err != nil {
			b.Fatal(err)
		}
		ev := benchEvent{name: c.name}
		if err := json.Unmarshal(raw, &ev.base); err != nil {
			b.Fatalf("%s: %v", c.file, err)
		}
		// What the emitter publishes: the stamped event, re-encoded.
		one := ev.fresh()
		one.Metadata.UID = "019ac6e2-4b1e-7a3c-9d2f-5e8b1c0a7f31"
		one.Metadata.Product.Version = "bench"
		if ev.encoded, err = one.AppendJSON(nil); err != nil {
			b.Fatal(err)
		}
		if err := schema.Validate(ev.encoded); err != nil {
			b.Fatalf("%s: %v", c.file, err)
		}
		ev.subject = bus.EventSubject(one.ClassUID(), int(one.SeverityID), one.Device.Hostname)
		out = append(out, ev)
	}
	return out
}

// fresh returns a copy of the event whose uid Emit will set (Emit keeps a
// uid that is set, and every published event needs its own).
func (e *benchEvent) fresh() *schema.ComplianceFinding {
	ev := e.base
	md := *e.base.Metadata
	md.UID = ""
	md.Profiles = slices.Clone(md.Profiles)
	md.Extensions = slices.Clone(md.Extensions)
	ev.Metadata = &md
	return &ev
}

// ackClock records when each acknowledgement arrived, by message id. Its
// handler runs on the connection's reply goroutine for both engines, so
// the cost is the same on both sides.
type ackClock struct {
	mu    sync.Mutex
	start time.Time // the benchmark's clock origin
	at    map[string]time.Duration
	bytes int // payload bytes acknowledged
	want  int
	done  chan struct{}
}

func newAckClock(start time.Time, want int) *ackClock {
	return &ackClock{start: start, at: make(map[string]time.Duration, want), want: want, done: make(chan struct{})}
}

func (c *ackClock) handler(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
	id := msg.Header.Get(jetstream.MsgIDHeader)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Since(c.start)
	if _, ok := c.at[id]; ok {
		return // a retried publish: the first acknowledgement counts
	}
	c.at[id] = now
	c.bytes += len(msg.Data)
	if len(c.at) == c.want {
		close(c.done)
	}
}

// reset moves the clock origin to now, once setup is done, and returns it.
func (c *ackClock) reset() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start = time.Now()
	return c.start
}

// wait returns once every acknowledgement was recorded: the handler runs
// after the future resolved, so it may trail Flush a little.
func (c *ackClock) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		b.Fatalf("%d of %d acknowledgements recorded", len(c.at), c.want)
	}
}

// sent is when one event was handed to Emit (or PublishMsgAsync).
type sent struct {
	id string
	at time.Duration
}

// benchBus is one embedded server (file storage, R1) shared by every
// engine of a benchmark run.
type benchBus struct {
	url string
}

func newBenchBus(b *testing.B) *benchBus {
	srv := startServerCfg(b, embedded.Config{})
	js, err := jetstream.New(dial(b, bus.ConnConfig{URLs: []string{srv.ClientURL()}}))
	if err != nil {
		b.Fatal(err)
	}
	ensureStreams(b, js, bus.Streams{Events: bus.StreamConfig{MaxBytes: 8 << 30}, DLQ: bus.StreamConfig{MaxBytes: 16 << 20}})
	return &benchBus{url: srv.ClientURL()}
}

// connect opens a connection whose JetStream context reports every
// acknowledgement to clock, and purges the stream so that every run
// starts from an empty store.
func (bb *benchBus) connect(b *testing.B, clock *ackClock) (*nats.Conn, jetstream.JetStream) {
	b.Helper()
	nc, err := bus.Connect(context.Background(), bus.ConnConfig{URLs: []string{bb.url}}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncAckHandler(clock.handler))
	if err != nil {
		b.Fatal(err)
	}
	s, err := js.Stream(context.Background(), bus.EventsStream)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Purge(context.Background()); err != nil {
		b.Fatal(err)
	}
	return nc, js
}

// percentile returns the p-th percentile (0 < p < 100) of d, sorting it.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p/100))]
}

// report reports throughput and latencies: calls holds the duration of
// each Emit (or PublishMsgAsync) call, sends when each event was handed
// over, clock when each was acknowledged.
func report(b *testing.B, n int, elapsed time.Duration, calls []time.Duration, sends []sent, clock *ackClock) {
	b.Helper()
	clock.wait(b)
	acks := make([]time.Duration, 0, len(sends))
	clock.mu.Lock()
	for _, s := range sends {
		at, ok := clock.at[s.id]
		if !ok {
			clock.mu.Unlock()
			b.Fatalf("no acknowledgement recorded for %s", s.id)
		}
		acks = append(acks, at-s.at)
	}
	msgBytes := clock.bytes / max(len(clock.at), 1)
	clock.mu.Unlock()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(percentile(calls, 50).Nanoseconds()), "call-p50-ns")
	b.ReportMetric(float64(percentile(calls, 99).Nanoseconds()), "call-p99-ns")
	b.ReportMetric(float64(percentile(acks, 50).Nanoseconds()), "ack-p50-ns")
	b.ReportMetric(float64(percentile(acks, 99).Nanoseconds()), "ack-p99-ns")
	b.ReportMetric(float64(msgBytes), "msg-bytes")
}

// benchRaw publishes the pre-encoded event b.N times with PublishMsgAsync,
// each with its own message id, and waits for every acknowledgement.
func benchRaw(b *testing.B, bb *benchBus, ev *benchEvent) {
	ids := make([]string, b.N)
	prefix := fmt.Sprintf("raw-%d-", time.Now().UnixNano())
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	calls := make([]time.Duration, b.N)
	sends := make([]sent, b.N)
	start := time.Now()
	clock := newAckClock(start, b.N)
	nc, js := bb.connect(b, clock)
	defer nc.Close()
	b.ResetTimer()
	start = clock.reset()
	for i := range b.N {
		t0 := time.Since(start)
		msg := &nats.Msg{Subject: ev.subject, Data: ev.encoded, Header: nats.Header{}}
		// At 4000 publishes in flight PublishMsgAsync waits for a slot:
		// let it wait (the default 200 ms fails under load).
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(ids[i]), jetstream.WithExpectStream(bus.EventsStream), jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatal(err)
		}
		calls[i] = time.Since(start) - t0
		sends[i] = sent{ids[i], t0}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatalf("%d publishes unacknowledged after 60s", js.PublishAsyncPending())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, b.N, elapsed, calls, sends, clock)
}

// emitMode is how the emit engines call Emit.
type emitMode struct {
	goroutines int // concurrent runs, each with its own Trail
	batch      int // events per Emit call
}

// benchEmit runs the full path: Trail.Emit (stamp, validate, spool with
// group commit) and a running publisher, until Flush returns.
func benchEmit(b *testing.B, bb *benchBus, ev *benchEvent, mode emitMode) {
	events := make([]*schema.ComplianceFinding, b.N)
	for i := range events {
		events[i] = ev.fresh()
	}
	dir, err := os.MkdirTemp("", "emitter-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	clock := newAckClock(start, b.N)
	nc, js := bb.connect(b, clock)
	defer nc.Close()
	em, err := emitter.New(emitter.Config{
		Spool:          spool.Config{Dir: dir, MaxBytes: 8 << 30},
		Publisher:      js,
		ProductVersion: "bench",
		Host:           emitter.Host{Hostname: "bench-host"},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- em.Run(ctx) }()
	defer func() {
		if err := em.Close(context.Background()); err != nil {
			b.Error(err)
		}
		cancel()
		if err := <-runDone; err != nil {
			b.Error(err)
		}
	}()

	var next atomic.Int64 // index of the next unclaimed event
	var mu sync.Mutex
	var calls []time.Duration
	var sends []sent
	worker := func(run string) {
		tr := em.Trail(run)
		var myCalls []time.Duration
		var mySends []sent
		batch := make([]schema.Event, 0, mode.batch)
		for {
			hi := int(next.Add(int64(mode.batch)))
			lo := hi - mode.batch
			if lo >= len(events) {
				break
			}
			batch = batch[:0]
			for _, e := range events[lo:min(hi, len(events))] {
				batch = append(batch, e)
			}
			t0 := time.Since(start)
			if err := tr.Emit(ctx, batch...); err != nil {
				b.Error(err)
				return
			}
			myCalls = append(myCalls, time.Since(start)-t0)
			for _, e := range events[lo:min(hi, len(events))] {
				mySends = append(mySends, sent{e.Metadata.UID, t0})
			}
		}
		mu.Lock()
		calls = append(calls, myCalls...)
		sends = append(sends, mySends...)
		mu.Unlock()
	}

	b.ResetTimer()
	start = clock.reset()
	var wg sync.WaitGroup
	for g := range mode.goroutines {
		wg.Go(func() { worker("bench-run-" + strconv.Itoa(g)) })
	}
	wg.Wait()
	flush(b, em, 120*time.Second)
	elapsed := time.Since(start)
	b.StopTimer()
	if b.Failed() {
		return
	}
	report(b, b.N, elapsed, calls, sends, clock)
	st := em.Stats()
	if st.Published != uint64(b.N) || st.Retries != 0 {
		b.Errorf("stats %+v, want %d published without a retry", st, b.N)
	}
}

// BenchmarkEmit compares, against one embedded server (file storage, R1),
// raw JetStream async publishing of pre-encoded events (raw-async) with
// the emitter's full path (stamp, validate, spool with group commit,
// publish, ack), from one goroutine emitting one event per call (emit),
// eight goroutines on their own runs (emit-parallel8), one goroutine
// emitting 12 events per call (emit-batch12, a sandbox launch's controls)
// and eight of those at once (emit-parallel8-batch12, concurrent launches).
// One op is one event; the clock stops when the last acknowledgement is
// in (raw) or Flush returns (emit).
//
// Metrics: events/s; call-p50/p99-ns, the duration of one Emit call (of
// PublishMsgAsync for raw-async), which for emit-batch12 is the time to
// make 12 events durable; ack-p50/p99-ns, from the call to the event's
// PubAck.
func BenchmarkEmit(b *testing.B) {
	bb := newBenchBus(b)
	for _, ev := range loadBenchEvents(b) {
		b.Run(ev.name+"/raw-async", func(b *testing.B) { benchRaw(b, bb, &ev) })
		b.Run(ev.name+"/emit", func(b *testing.B) { benchEmit(b, bb, &ev, emitMode{goroutines: 1, batch: 1}) })
		b.Run(ev.name+"/emit-parallel8", func(b *testing.B) { benchEmit(b, bb, &ev, emitMode{goroutines: 8, batch: 1}) })
		b.Run(ev.name+"/emit-batch12", func(b *testing.B) { benchEmit(b, bb, &ev, emitMode{goroutines: 1, batch: 12}) })
		b.Run(ev.name+"/emit-parallel8-batch12", func(b *testing.B) { benchEmit(b, bb, &ev, emitMode{goroutines: 8, batch: 12}) })
	}
}

// BenchmarkDurable12 measures making a batch of 12 events durable without
// a bus: one op is one Trail.Emit of 12 events (emit: stamp, encode,
// validate, append, fdatasync), against spool.Append of the 12 already
// encoded records (spool-append: framing, write, fdatasync), and a bare
// write+fdatasync of as many bytes to a plain file (fdatasync).
func BenchmarkDurable12(b *testing.B) {
	for _, ev := range loadBenchEvents(b) {
		b.Run(ev.name+"/fdatasync", func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "f"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := bytes.Repeat(ev.encoded, 12)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportDurable(b, lat)
		})
		b.Run(ev.name+"/spool-append", func(b *testing.B) {
			s, _, err := spool.Open(spool.Config{Dir: b.TempDir(), MaxBytes: 8 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			recs := slices.Repeat([][]byte{ev.encoded}, 12)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if err := s.Append(context.Background(), recs...); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportDurable(b, lat)
		})
		b.Run(ev.name+"/emit", func(b *testing.B) {
			em, err := emitter.New(emitter.Config{
				Spool:          spool.Config{Dir: b.TempDir(), MaxBytes: 8 << 30},
				ProductVersion: "bench",
				Host:           emitter.Host{Hostname: "bench-host"},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer em.Close(context.Background()) // the events stay spooled: no bus here
			tr := em.Trail("bench-durable")
			batch := make([]schema.Event, 12)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				b.StopTimer()
				for i := range batch {
					batch[i] = ev.fresh()
				}
				b.StartTimer()
				t0 := time.Now()
				if err := tr.Emit(context.Background(), batch...); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportDurable(b, lat)
		})
	}
}

func reportDurable(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(percentile(lat, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(lat, 99).Nanoseconds()), "p99-ns")
}
