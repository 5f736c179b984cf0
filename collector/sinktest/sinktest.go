// Package sinktest is the conformance suite of collector.Sink, in the
// style of testing/slogtest: every sink package runs it from its own tests,
// against a real receiver where one exists (files, VictoriaLogs, rsyslog,
// an httptest fake that follows the documented protocol otherwise).
//
//	func TestConformance(t *testing.T) {
//		recv := startVictoriaLogs(t)
//		sinktest.Run(t, sinktest.Harness{
//			New:     func(t *testing.T) collector.Sink { s, err := elastic.New(elastic.Config{URL: recv.URL}); ...; return s },
//			Read:    func(t *testing.T) []sinktest.Received { return recv.query(t, "*") },
//			Break:   recv.stop,    // refuse connections: a failure a retry can fix
//			Restore: recv.start,
//			Settle:  5 * time.Second, // VictoriaLogs shows rows after about 1s
//		})
//	}
//
// What it checks, one subtest each (names are stable, for -run):
//
//   - Batches: batches of 1, 7 and 256 events all come back Delivered,
//     one Outcome per event, and the receiver holds every uid.
//   - EmptyBatch: Write with no events returns no outcomes.
//   - LargeEvent: a 256 KiB event (Harness.MaxEventBytes) is delivered.
//   - Redelivery: the same batch written twice is Delivered both times (the
//     collector redelivers after a lost acknowledgement); an Idempotent
//     receiver then holds each uid once, any other at least once (the
//     duplicates are logged).
//   - DataNotRetained: overwriting the events' Data after Write returned
//     does not change what the receiver holds (sinks may not keep Data).
//   - Retry (needs Break/Restore): with the receiver broken every outcome
//     is Retry with a Reason, never Reject and never Delivered; once
//     restored, the same batch is Delivered.
//   - Reject (needs Reject): an event the receiver refuses for good comes
//     back Reject with a Reason, and its neighbours Delivered.
//   - Cancelled: Write with a cancelled context returns at once, with
//     Delivered or Retry outcomes only; with the receiver broken (when it
//     can be), Write gives up when its context's deadline passes.
//   - Close: Close flushes (the receiver holds what was written), a second
//     Close returns nil, and Write after Close marks every event Retry.
//   - NoGoroutineLeak: after Close, no goroutine the sink started is left
//     (go.uber.org/goleak; Harness.LeakOptions ignores the receiver's).
//
// Run must not run in parallel with other tests of the package: the leak
// check compares the process's goroutines before and after.
package sinktest

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
)

// Harness connects the suite to one sink and its receiver.
type Harness struct {
	// New returns a new sink delivering to the receiver. Required. The
	// suite closes every sink it gets.
	New func(t *testing.T) collector.Sink
	// Read returns what the receiver holds now: one entry per stored copy
	// of an event (duplicates included), in any order. Required. It may
	// return events of earlier subtests; the suite looks only for the uids
	// it wrote.
	Read func(t *testing.T) []Received
	// Break makes the receiver fail in a way a retry can fix (refuse
	// connections, answer 503, make the directory unwritable); Restore
	// undoes it. Optional, both or neither: without them the Retry
	// subtest and half of Cancelled are skipped.
	Break, Restore func(t *testing.T)
	// Reject returns an event the receiver refuses for good (an
	// Elasticsearch mapping conflict, a syslog message over the server's
	// size limit). Optional: without it the Reject subtest is skipped.
	Reject func(t *testing.T) collector.Event
	// Settle is how long the receiver may take to show what it stored:
	// Read is polled until it shows what is expected or Settle has passed.
	// Default 0: Read once.
	Settle time.Duration
	// Idempotent says the receiver keeps one copy per metadata.uid
	// (Elasticsearch create with _id): writing an event twice stores it
	// once. Default false: duplicates are allowed and only logged.
	Idempotent bool
	// ExactBytes says Received.Data must be the bytes written (a file
	// sink); otherwise, when Data is set, it must be the same JSON document.
	ExactBytes bool
	// MaxEventBytes is the size of the LargeEvent subtest's event. Default
	// 256 KiB.
	MaxEventBytes int
	// WriteTimeout bounds each Write of the suite. Default 30s.
	WriteTimeout time.Duration
	// LeakOptions are passed to goleak, for goroutines the receiver owns.
	LeakOptions []goleak.Option
}

// Received is one event as the receiver stored it.
type Received struct {
	UID  string // metadata.uid
	Data []byte // the event as the receiver gives it back; nil if it cannot
}

// Run runs the suite. It calls t.Fatal when h lacks New or Read.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Read == nil {
		t.Fatal("sinktest: Harness.New and Harness.Read are required")
	}
	if (h.Break == nil) != (h.Restore == nil) {
		t.Fatal("sinktest: Harness.Break and Harness.Restore go together")
	}
	if h.MaxEventBytes == 0 {
		h.MaxEventBytes = 256 << 10
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = 30 * time.Second
	}
	s := &suite{h: h}
	for _, st := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Batches", s.batches},
		{"EmptyBatch", s.emptyBatch},
		{"LargeEvent", s.largeEvent},
		{"Redelivery", s.redelivery},
		{"DataNotRetained", s.dataNotRetained},
		{"Retry", s.retry},
		{"Reject", s.reject},
		{"Cancelled", s.cancelled},
		{"Close", s.close},
		{"NoGoroutineLeak", s.noLeak},
	} {
		t.Run(st.name, st.f)
	}
}

type suite struct{ h Harness }

// sink returns a new sink closed at the end of the test.
func (s *suite) sink(t *testing.T) collector.Sink {
	t.Helper()
	sk := s.h.New(t)
	if sk == nil {
		t.Fatal("Harness.New returned nil")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sk.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sk
}

func (s *suite) write(t *testing.T, sk collector.Sink, batch []collector.Event) []collector.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.h.WriteTimeout)
	defer cancel()
	outs := sk.Write(ctx, batch)
	if len(outs) != len(batch) {
		t.Fatalf("Write returned %d outcomes for %d events", len(outs), len(batch))
	}
	return outs
}

// mustDeliver writes batch and fails unless every outcome is Delivered.
func (s *suite) mustDeliver(t *testing.T, sk collector.Sink, batch []collector.Event) {
	t.Helper()
	for i, o := range s.write(t, sk, batch) {
		if o.Status != collector.Delivered {
			t.Fatalf("event %d of %d: got %s (%q), want delivered", i+1, len(batch), o.Status, o.Reason)
		}
	}
}

// await polls Read until every event of want is held (at least once) and
// returns how many copies of each uid the receiver holds.
func (s *suite) await(t *testing.T, want []collector.Event) map[string][]Received {
	t.Helper()
	deadline := time.Now().Add(s.h.Settle)
	for {
		got := map[string][]Received{}
		for _, r := range s.h.Read(t) {
			got[r.UID] = append(got[r.UID], r)
		}
		missing := 0
		for _, ev := range want {
			if len(got[ev.UID]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver holds %d of the %d events written (waited %s)", len(want)-missing, len(want), s.h.Settle)
		}
		time.Sleep(min(100*time.Millisecond, s.h.Settle/10+time.Millisecond))
	}
}

// checkData compares what the receiver holds with what was written.
func (s *suite) checkData(t *testing.T, got map[string][]Received, want []collector.Event) {
	t.Helper()
	for _, ev := range want {
		for _, r := range got[ev.UID] {
			if r.Data == nil {
				continue
			}
			if s.h.ExactBytes {
				if !bytes.Equal(r.Data, ev.Data) {
					t.Fatalf("uid %s: the receiver holds\n%s\nwant the bytes written\n%s", ev.UID, r.Data, ev.Data)
				}
				continue
			}
			var a, b any
			if err := json.Unmarshal(r.Data, &a); err != nil {
				t.Fatalf("uid %s: the receiver holds invalid JSON: %v", ev.UID, err)
			}
			if err := json.Unmarshal(ev.Data, &b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("uid %s: the receiver holds\n%s\nwant the same JSON as\n%s", ev.UID, r.Data, ev.Data)
			}
		}
	}
}

func (s *suite) batches(t *testing.T) {
	sk := s.sink(t)
	var all []collector.Event
	for _, n := range []int{1, 7, 256} {
		batch := Events(n)
		s.mustDeliver(t, sk, batch)
		all = append(all, batch...)
	}
	s.checkData(t, s.await(t, all), all)
}

func (s *suite) emptyBatch(t *testing.T) {
	sk := s.sink(t)
	if outs := s.write(t, sk, nil); len(outs) != 0 {
		t.Fatalf("Write(nil) returned %d outcomes, want 0", len(outs))
	}
}

func (s *suite) largeEvent(t *testing.T) {
	sk := s.sink(t)
	batch := []collector.Event{LargeEvent(s.h.MaxEventBytes)}
	batch = append(batch, Events(2)...)
	s.mustDeliver(t, sk, batch)
	s.checkData(t, s.await(t, batch), batch)
}

func (s *suite) redelivery(t *testing.T) {
	sk := s.h.New(t)
	batch := Events(20)
	s.mustDeliver(t, sk, batch)
	s.mustDeliver(t, sk, batch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A new sink, as after a collector restart.
	s.mustDeliver(t, s.sink(t), batch[:5])
	got := s.await(t, batch)
	dups := 0
	for _, ev := range batch {
		dups += len(got[ev.UID]) - 1
	}
	if s.h.Idempotent && dups > 0 {
		t.Fatalf("the receiver is declared idempotent but holds %d duplicate copies", dups)
	}
	t.Logf("writing 20 events twice (5 of them three times) left %d duplicate copies", dups)
}

func (s *suite) dataNotRetained(t *testing.T) {
	sk := s.sink(t)
	batch := Events(10)
	orig := make([]collector.Event, len(batch))
	for i, ev := range batch {
		orig[i] = ev
		orig[i].Data = bytes.Clone(ev.Data)
	}
	s.mustDeliver(t, sk, batch)
	for _, ev := range batch {
		for i := range ev.Data {
			ev.Data[i] = ' '
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.checkData(t, s.await(t, orig), orig)
}

func (s *suite) retry(t *testing.T) {
	if s.h.Break == nil {
		t.Skip("Harness.Break is not set")
	}
	sk := s.sink(t)
	s.mustDeliver(t, sk, Events(3)) // connected and working before the break
	batch := Events(5)
	s.h.Break(t)
	restored := false
	defer func() {
		if !restored {
			s.h.Restore(t)
		}
	}()
	for i, o := range s.write(t, sk, batch) {
		if o.Status != collector.Retry {
			t.Fatalf("receiver broken: event %d: got %s (%q), want retry", i+1, o.Status, o.Reason)
		}
		if o.Reason == "" {
			t.Fatalf("receiver broken: event %d: Retry without a Reason", i+1)
		}
	}
	s.h.Restore(t)
	restored = true
	s.mustDeliver(t, sk, batch)
	s.checkData(t, s.await(t, batch), batch)
}

func (s *suite) reject(t *testing.T) {
	if s.h.Reject == nil {
		t.Skip("Harness.Reject is not set")
	}
	sk := s.sink(t)
	good := Events(2)
	batch := []collector.Event{good[0], s.h.Reject(t), good[1]}
	outs := s.write(t, sk, batch)
	for i, want := range []collector.Status{collector.Delivered, collector.Reject, collector.Delivered} {
		if outs[i].Status != want {
			t.Fatalf("event %d: got %s (%q), want %s", i+1, outs[i].Status, outs[i].Reason, want)
		}
	}
	if outs[1].Reason == "" {
		t.Fatal("Reject without a Reason")
	}
	s.await(t, good)
}

func (s *suite) cancelled(t *testing.T) {
	sk := s.sink(t)
	batch := Events(5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	outs := sk.Write(ctx, batch)
	if len(outs) != len(batch) {
		t.Fatalf("Write returned %d outcomes for %d events", len(outs), len(batch))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Write with a cancelled context took %s", d)
	}
	for i, o := range outs {
		if o.Status == collector.Reject {
			t.Fatalf("cancelled: event %d: Reject (%q); a cancelled write is Retry (or Delivered)", i+1, o.Reason)
		}
	}
	s.mustDeliver(t, sk, batch)
	s.await(t, batch)

	if s.h.Break == nil {
		return
	}
	s.h.Break(t)
	defer s.h.Restore(t)
	const deadline = 300 * time.Millisecond
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start = time.Now()
	outs = sk.Write(ctx, Events(3))
	if d := time.Since(start); d > deadline+5*time.Second {
		t.Fatalf("receiver broken: Write ignored its %s deadline (took %s)", deadline, d)
	}
	for i, o := range outs {
		if o.Status != collector.Retry {
			t.Fatalf("receiver broken, deadline passed: event %d: got %s, want retry", i+1, o.Status)
		}
	}
}

func (s *suite) close(t *testing.T) {
	sk := s.h.New(t)
	batch := Events(50)
	s.mustDeliver(t, sk, batch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sk.Close(ctx); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	s.await(t, batch)
	for i, o := range sk.Write(ctx, Events(3)) {
		if o.Status != collector.Retry {
			t.Fatalf("Write after Close: event %d: got %s, want retry", i+1, o.Status)
		}
	}
}

func (s *suite) noLeak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	sk := s.h.New(t)
	s.mustDeliver(t, sk, Events(10))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := goleak.Find(append([]goleak.Option{before}, s.h.LeakOptions...)...); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
}
