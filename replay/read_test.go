package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
)

var base = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) // "last Tuesday"

// genEvents returns n events spread over an hour from base, of 3
// classes, severities 1 to 5, 3 hosts and 10 runs; one in 50 is
// published late with an old time, as after a spool backlog, so stream
// order is not time order.
func genEvents(n int) []testEvent {
	r := rand.New(rand.NewPCG(7, 8))
	classes := []int{2003, 2004, 1007}
	hosts := []string{"ci-runner-07", "build.example.net", "DB-1"}
	evs := make([]testEvent, n)
	for i := range evs {
		t := base.Add(time.Duration(i) * time.Hour / time.Duration(n))
		if r.IntN(50) == 0 {
			t = t.Add(-time.Duration(r.IntN(30)) * time.Minute)
		}
		evs[i] = testEvent{Class: classes[i%3], Severity: 1 + i%5, Host: hosts[(i/3)%3], Run: fmt.Sprintf("run-%d", i%10), Seq: i + 1, Time: t}
	}
	return evs
}

// publishEvents publishes evs to a new stream.
func publishEvents(tb testing.TB, evs []testEvent, maxBytes int64) (jetstream.JetStream, []testEvent) {
	js := newStream(tb, maxBytes)
	subjects := make([]string, len(evs))
	data := make([][]byte, len(evs))
	for i, e := range evs {
		subjects[i], data[i] = e.subject(), e.json()
	}
	publish(tb, js, subjects, data)
	return js, evs
}

func TestRead100kByTimeRange(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	js, evs := publishEvents(t, genEvents(n), 256<<20)
	since, until := base.Add(20*time.Minute), base.Add(40*time.Minute)
	tests := []struct {
		name   string
		filter Filter
		want   func(e testEvent) bool
	}{
		{"time range", Filter{Since: since, Until: until}, func(e testEvent) bool {
			return !e.Time.Before(since) && e.Time.Before(until)
		}},
		{"time range, class, severity, host and run", Filter{Since: since, Until: until, Classes: []int{2004, 1007},
			MinSeverity: 3, Hosts: []string{"Build.Example.NET"}, Run: "run-7"}, func(e testEvent) bool {
			return !e.Time.Before(since) && e.Time.Before(until) && e.Class != 2003 && e.Severity >= 3 &&
				e.Host == "build.example.net" && e.Run == "run-7"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got []int
			for _, e := range evs {
				if tt.want(e) {
					want = append(want, e.Seq)
				}
			}
			var lastSeq uint64
			batches := 0
			st, err := Read(t.Context(), js, Config{Filter: tt.filter, Batch: 1000}, func(ms []Message) error {
				batches++
				for _, m := range ms {
					if m.StreamSeq <= lastSeq {
						return fmt.Errorf("stream seq %d after %d: not in stream order", m.StreamSeq, lastSeq)
					}
					lastSeq = m.StreamSeq
					got = append(got, int(m.Envelope.Seq))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			slices.Sort(got)
			if len(want) == 0 {
				t.Fatal("the test selects nothing")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%d events read, want %d (-want +got):\n%.2000s", len(got), len(want), diff)
			}
			if st.Matched != uint64(len(want)) || st.Malformed != 0 || st.EndSeq != uint64(len(evs)) {
				t.Errorf("stats = %+v, want %d matched of a stream ending at %d", st, len(want), len(evs))
			}
			t.Logf("%s: %d of %d scanned matched, in %d batches", tt.name, st.Matched, st.Scanned, batches)
		})
	}
}

func TestReadStopsAtTheEndOfTheStreamAtStart(t *testing.T) {
	js, evs := publishEvents(t, genEvents(3000), 64<<20)
	more := genEvents(6000)[3000:]
	published := make(chan struct{})
	n := 0
	st, err := Read(t.Context(), js, Config{Batch: 100}, func(ms []Message) error {
		if n == 0 { // publish more while reading: Read must not wait for them
			go func() {
				defer close(published)
				subjects, data := make([]string, len(more)), make([][]byte, len(more))
				for i, e := range more {
					subjects[i], data[i] = e.subject(), e.json()
				}
				publish(t, js, subjects, data)
			}()
		}
		n += len(ms)
		return nil
	})
	<-published
	if err != nil || n != len(evs) || st.EndSeq != uint64(len(evs)) {
		t.Errorf("Read = %d events, %+v, %v; want %d", n, st, err, len(evs))
	}
}

func TestReadInterrupted(t *testing.T) {
	js, _ := publishEvents(t, genEvents(5000), 64<<20)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got int
	progress := 0
	st, err := Read(ctx, js, Config{Batch: 100, Progress: func(Progress) { progress++ }}, func(ms []Message) error {
		got += len(ms)
		if got >= 1000 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Read error = %v, want context.Canceled", err)
	}
	if uint64(got) != st.Matched || got < 1000 || got >= 5000 || progress == 0 {
		t.Errorf("read %d, stats %+v, %d progress calls: want what was read handed over and counted", got, st, progress)
	}
}

func TestReadCallbackErrorStops(t *testing.T) {
	js, _ := publishEvents(t, genEvents(1000), 64<<20)
	boom := errors.New("sink full")
	_, err := Read(t.Context(), js, Config{Batch: 10}, func([]Message) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Read error = %v, want the callback's", err)
	}
}

func TestReadSinceUsesStreamTime(t *testing.T) {
	// Old events, stored now: a Since far in the past of the stream's
	// clock starts at the stream's beginning; a Since after they were
	// stored makes the consumer skip them without reading them.
	js, evs := publishEvents(t, genEvents(2000), 64<<20)
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	st, err := Read(t.Context(), js, Config{Filter: Filter{Since: cut}, ClockSkew: time.Millisecond}, func([]Message) error { return nil })
	if err != nil || st.Total != 0 || st.Scanned != 0 {
		t.Errorf("Read since after the last store: %+v, %v; want nothing to read", st, err)
	}
	st, err = Read(t.Context(), js, Config{Filter: Filter{Since: base}}, func([]Message) error { return nil })
	if err != nil || st.Matched != uint64(len(evs)-countBefore(evs, base)) {
		t.Errorf("Read since base: %+v, %v", st, err)
	}
}

func countBefore(evs []testEvent, t time.Time) int {
	n := 0
	for _, e := range evs {
		if e.Time.Before(t) {
			n++
		}
	}
	return n
}

func TestReadMaxDelay(t *testing.T) {
	js, _ := publishEvents(t, genEvents(500), 64<<20)
	// Every message was stored long after until+1m: nothing is read.
	st, err := Read(t.Context(), js, Config{Filter: Filter{Until: base.Add(time.Hour)}, MaxDelay: time.Minute}, func([]Message) error { return nil })
	if err != nil || st.Scanned != 0 {
		t.Errorf("Read with MaxDelay = %+v, %v; want it to stop at the first message", st, err)
	}
}

func TestReadErrors(t *testing.T) {
	js := newStream(t, 1<<20)
	if _, err := Read(t.Context(), js, Config{Stream: "NOPE"}, nil); !errors.Is(err, ErrNoStream) {
		t.Errorf("missing stream: %v", err)
	}
	st, err := Read(t.Context(), js, Config{}, nil)
	if err != nil || st != (Stats{}) {
		t.Errorf("empty stream: %+v, %v", st, err)
	}
	if _, err := Read(t.Context(), js, Config{Filter: Filter{Since: base, Until: base}}, nil); err == nil {
		t.Error("empty time range accepted")
	}
}
