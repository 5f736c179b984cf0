package replay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
)

// memSink keeps events by uid, as the receivers of the collector's sinks
// do (an Elasticsearch _id, a HEC ack...), and fails as scripted.
type memSink struct {
	mu      sync.Mutex
	byUID   map[string][]byte
	writes  int
	outcome func(write int, ev collector.Event) collector.Outcome
}

func (s *memSink) Write(_ context.Context, batch []collector.Event) []collector.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	out := make([]collector.Outcome, len(batch))
	for i, ev := range batch {
		if s.outcome != nil {
			out[i] = s.outcome(s.writes, ev)
		}
		if out[i].Status == collector.Delivered {
			s.byUID[ev.UID] = ev.Data
		}
	}
	return out
}

func (s *memSink) Close(context.Context) error { return nil }

var _ collector.Sink = (*memSink)(nil)

func exportMessages(n int) []Message {
	var ms []Message
	for i, e := range genEvents(n) {
		m := Message{StreamSeq: uint64(i + 1), Subject: e.subject(), Data: e.json()}
		m.Envelope, _ = ParseEnvelope(m.Data)
		ms = append(ms, m)
	}
	return ms
}

func TestExportIdempotentByUID(t *testing.T) {
	sink := &memSink{byUID: map[string][]byte{}}
	ms := exportMessages(50)
	var st ExportStats
	for range 2 { // refilling twice leaves one copy of each
		if err := Export(t.Context(), sink, ms, ExportConfig{}, &st); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.byUID) != 50 || st.Delivered != 100 || st.Rejected != 0 {
		t.Errorf("sink holds %d events, stats %+v; want 50 events, 100 deliveries", len(sink.byUID), st)
	}
	if got := sink.byUID[ms[7].UID]; string(got) != string(ms[7].Data) {
		t.Errorf("event 8 stored as %s", got)
	}
}

func TestExportRetriesAndRejects(t *testing.T) {
	sink := &memSink{byUID: map[string][]byte{}, outcome: func(write int, ev collector.Event) collector.Outcome {
		switch {
		case ev.UID == "019ac6e2-0000-7000-8000-000000000003":
			return collector.Outcome{Status: collector.Reject, Reason: "400 mapping conflict"}
		case write < 3 && ev.SeverityID >= 4:
			return collector.Outcome{Status: collector.Retry, Reason: "429 too many requests", RetryAfter: time.Millisecond}
		}
		return collector.Outcome{Status: collector.Delivered}
	}}
	var st ExportStats
	err := Export(t.Context(), sink, exportMessages(20), ExportConfig{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, &st)
	if err != nil {
		t.Fatal(err)
	}
	if st.Delivered != 19 || st.Rejected != 1 || len(st.Rejections) != 1 || st.Rejections[0].StreamSeq != 3 || sink.writes != 3 {
		t.Errorf("stats %+v after %d writes; want 19 delivered, seq 3 rejected, 3 writes", st, sink.writes)
	}
}

func TestExportGivesUp(t *testing.T) {
	always := &memSink{byUID: map[string][]byte{}, outcome: func(int, collector.Event) collector.Outcome {
		return collector.Outcome{Status: collector.Retry, Reason: "connection refused"}
	}}
	var st ExportStats
	err := Export(t.Context(), always, exportMessages(5), ExportConfig{RetryMin: time.Millisecond, MaxAttempts: 3}, &st)
	if err == nil || !strings.Contains(err.Error(), "5 events still not delivered after 3 attempts") || always.writes != 3 {
		t.Errorf("Export = %v after %d writes", err, always.writes)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = Export(ctx, always, exportMessages(5), ExportConfig{RetryMin: time.Hour}, &st)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Export with a cancelled context = %v", err)
	}
}
