package collector_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/schema"
)

// dlqEvent is the part of a dead letter the tests look at.
type dlqEvent struct {
	ClassUID     int    `json:"class_uid"`
	ActivityID   int    `json:"activity_id"`
	SeverityID   int    `json:"severity_id"`
	Message      string `json:"message"`
	StatusCode   string `json:"status_code"`
	StatusDetail string `json:"status_detail"`
	RawData      string `json:"raw_data"`
	RawDataSize  int64  `json:"raw_data_size"`
	RawDataHash  struct {
		AlgorithmID int    `json:"algorithm_id"`
		Value       string `json:"value"`
	} `json:"raw_data_hash"`
	Unmapped map[string]any `json:"unmapped"`
	Metadata struct {
		UID              string `json:"uid"`
		CorrelationUID   string `json:"correlation_uid"`
		EventCode        string `json:"event_code"`
		Sequence         int    `json:"sequence"`
		IsTruncated      bool   `json:"is_truncated"`
		OriginalEventUID string `json:"original_event_uid"`
		LogName          string `json:"log_name"`
	} `json:"metadata"`
}

func mustEnvelope(t testing.TB, data []byte) collector.Event {
	t.Helper()
	var ev struct {
		Metadata struct {
			UID            string `json:"uid"`
			CorrelationUID string `json:"correlation_uid"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return collector.Event{UID: ev.Metadata.UID, RunID: ev.Metadata.CorrelationUID}
}

func eventCode(data []byte) string {
	var ev dlqEvent
	_ = json.Unmarshal(data, &ev)
	return ev.Metadata.EventCode
}

func seqOf(data []byte) string {
	var ev dlqEvent
	_ = json.Unmarshal(data, &ev)
	return strconv.Itoa(ev.Metadata.Sequence)
}

// badMessage is a message the collector must dead-letter.
type badMessage struct {
	name   string
	data   []byte
	reason string
}

func badMessages(t *testing.T) []badMessage {
	t.Helper()
	valid := sinktest.Events(1)[0].Data
	// Valid but for its size.
	huge := bytes.Replace(valid, []byte(`"message":"`), append([]byte(`"message":"`), bytes.Repeat([]byte("x"), 20<<20)...), 1)
	return []badMessage{
		{"garbage", []byte("\xff\xfe\x00garbage\x80\x81 not json at all \xc3"), "syntax"},
		{"truncated", valid[:len(valid)/2], "syntax"},
		{"20MB", huge, "too_large"},
		{"schema-invalid", bytes.Replace(valid, []byte(`"severity_id":1`), []byte(`"severity_id":42`), 1), "schema"},
		{"unknown-class", []byte(`{"class_uid":3002,"category_uid":3,"activity_id":1,"type_uid":300201,"severity_id":1,"time":1764263000123,` +
			`"metadata":{"version":"1.8.0","product":{"name":"idp","vendor_name":"example"}}}`), "unknown_class"},
	}
}

// Garbage, truncated JSON, a 20 MB message, a schema violation and a class
// sandtrail does not know each end in the dead-letter stream with their
// reason; the valid events around them are delivered, in order, by every
// sink; two sinks seeing one bad message make one dead letter.
func TestDeadLetters(t *testing.T) {
	e := startEnv(t, 32<<20)
	dir := t.TempDir()
	nd, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mem := &memSink{}
	c, _ := newCollector(t, e, collector.Config{Sinks: []collector.SinkConfig{
		{Name: "files", Sink: nd, Filter: only2003, MaxEvents: 4},
		{Name: "mem", Sink: mem, Filter: only2003},
	}})
	subject := bus.EventSubject(2003, 1, "sinktest-host")
	valid := sinktest.Events(6)
	bad := badMessages(t)
	seqs := map[uint64]badMessage{}
	e.publish(t, valid[:1])
	for i, b := range bad {
		seqs[e.publishRaw(t, subject, b.data)] = b
		e.publish(t, valid[i+1:i+2])
	}
	waitFor(t, 90*time.Second, "the valid events", func() bool {
		return len(mem.events()) == len(valid) && hasAll(readNDJSON(t, dir), uids(valid)) == 0
	})
	for i, ev := range mem.events() {
		if ev.UID != valid[i].UID {
			t.Fatalf("mem sink event %d: %s, want %s", i, ev.UID, valid[i].UID)
		}
	}
	if dups := checkOrderPerRun(t, readNDJSON(t, dir)); dups != 0 {
		t.Errorf("%d duplicates in the files", dups)
	}

	waitFor(t, 10*time.Second, "the dead letters", func() bool { return len(e.streamMsgs(t, bus.DLQStream)) >= len(bad) })
	time.Sleep(200 * time.Millisecond)
	msgs := e.streamMsgs(t, bus.DLQStream)
	if len(msgs) != len(bad) {
		t.Fatalf("%d dead letters, want %d (one per bad message, whatever the number of sinks)", len(msgs), len(bad))
	}
	for _, m := range msgs {
		seq, _ := strconv.ParseUint(m.Header.Get(collector.HeaderStreamSeq), 10, 64)
		b, ok := seqs[seq]
		if !ok {
			t.Fatalf("dead letter for stream seq %d: not a bad message", seq)
		}
		t.Run(b.name, func(t *testing.T) { checkDeadLetter(t, m.Subject, m.Data, b, c.RunID()) })
		if got := m.Header.Get(collector.HeaderSubject); got != subject {
			t.Errorf("%s: header subject %q", b.name, got)
		}
	}
	for _, r := range []struct {
		reason string
		n      float64
	}{{"syntax", 2}, {"too_large", 1}, {"schema", 1}, {"unknown_class", 1}} {
		n := metric(t, c.Registry(), "sandtrail_collector_events_dead_lettered_total", "sink", "files", "reason", r.reason) +
			metric(t, c.Registry(), "sandtrail_collector_events_dead_lettered_total", "sink", "mem", "reason", r.reason)
		if n != 2*r.n {
			t.Errorf("dead_lettered_total{reason=%s} over both sinks = %v, want %v (each sink terminates its copy)", r.reason, n, 2*r.n)
		}
	}

	// Still running.
	more := sinktest.Events(3)
	e.publish(t, more)
	waitFor(t, 10*time.Second, "events after the dead letters", func() bool { return len(mem.events()) == len(valid)+len(more) })
}

func checkDeadLetter(t *testing.T, subject string, data []byte, b badMessage, runID string) {
	if err := schema.Validate(data); err != nil {
		t.Fatalf("the dead letter is not a valid event: %v", err)
	}
	if len(data) > 1<<20 {
		t.Fatalf("the dead letter is %d bytes, over 1 MiB", len(data))
	}
	if want := "sandtrail.dlq." + b.reason; subject != want {
		t.Errorf("subject %s, want %s", subject, want)
	}
	var ev dlqEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ClassUID != 6008 || ev.ActivityID != 2 {
		t.Errorf("class %d activity %d, want 6008 activity 2 (Translation Error)", ev.ClassUID, ev.ActivityID)
	}
	verr := schema.Validate(b.data)
	if verr == nil {
		t.Fatal("the bad message validates")
	}
	if ev.Message != verr.Error() {
		t.Errorf("message %q, want the validator's %q", ev.Message, verr.Error())
	}
	// Dead letters are a run of their own (<run>/dlq): each stream then
	// holds complete, verifiable trails.
	if ev.Metadata.CorrelationUID != runID+"/dlq" || ev.Metadata.Sequence < 1 {
		t.Errorf("correlation_uid %s sequence %d: want the collector's dead-letter trail %s/dlq", ev.Metadata.CorrelationUID, ev.Metadata.Sequence, runID)
	}
	if ev.RawDataSize != int64(len(b.data)) {
		t.Errorf("raw_data_size %d, want %d", ev.RawDataSize, len(b.data))
	}
	sum := sha256.Sum256(b.data)
	if ev.RawDataHash.AlgorithmID != 3 || ev.RawDataHash.Value != hex.EncodeToString(sum[:]) {
		t.Errorf("raw_data_hash %+v, want the SHA-256 of the message", ev.RawDataHash)
	}
	raw := []byte(ev.RawData)
	if enc, _ := ev.Unmapped["raw_data_encoding"].(string); enc == "base64" {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(ev.RawData); err != nil {
			t.Fatal(err)
		}
	} else if b.name == "garbage" {
		t.Error("invalid UTF-8 not carried as base64")
	}
	switch {
	case len(b.data) > collector.DefaultRawDataMax:
		if !ev.Metadata.IsTruncated || len(raw) > collector.DefaultRawDataMax || !bytes.HasPrefix(b.data, raw) || len(raw) < collector.DefaultRawDataMax-4 {
			t.Errorf("large message: raw_data %d bytes, truncated %v; want a %d-byte prefix, marked truncated", len(raw), ev.Metadata.IsTruncated, collector.DefaultRawDataMax)
		}
	case !bytes.Equal(raw, b.data):
		t.Errorf("raw_data %q, want the original %q", raw, b.data)
	}
	if !strings.Contains(ev.StatusDetail, "stream SANDTRAIL_EVENTS seq") || !strings.HasPrefix(ev.StatusDetail, "path /") {
		t.Errorf("status_detail %q", ev.StatusDetail)
	}
	if want := "DLQ_" + strings.ToUpper(b.reason); ev.Metadata.EventCode != want || ev.Metadata.LogName != subject {
		t.Errorf("event_code %s log_name %s, want %s %s", ev.Metadata.EventCode, ev.Metadata.LogName, want, subject)
	}
	var verr2 *schema.ValidationError
	wantCode := "SYNTAX"
	if errors.As(verr, &verr2) && json.Valid(b.data) {
		wantCode = strings.ToUpper(verr2.Kind.String())
	}
	if ev.StatusCode != wantCode {
		t.Errorf("status_code %s, want %s", ev.StatusCode, wantCode)
	}
}

// An event the receiver rejects and one it keeps refusing (per event, so
// the rest of the batch goes through) end in the dead-letter stream; the
// refused one after MaxDeliver deliveries, the last being its dead letter.
func TestRejectAndMaxDeliveries(t *testing.T) {
	e := startEnv(t, 0)
	evs := sinktest.Events(20)
	poison, rejected := evs[5].UID, evs[10].UID
	seen := map[string]int{}
	sink := &memSink{fail: func(ev collector.Event) collector.Outcome {
		seen[ev.UID]++
		switch ev.UID {
		case poison:
			return collector.Outcome{Status: collector.Retry, Reason: "HTTP 429 Too Many Requests", RetryAfter: 10 * time.Millisecond}
		case rejected:
			return collector.Outcome{Status: collector.Reject, Reason: "HTTP 400 mapper_parsing_exception"}
		}
		return collector.Outcome{}
	}}
	c, _ := newCollector(t, e, collector.Config{Sinks: []collector.SinkConfig{
		{Name: "siem", Sink: sink, Filter: only2003, MaxDeliver: 4, RetryMin: 20 * time.Millisecond},
	}})
	e.publish(t, evs)
	waitFor(t, 20*time.Second, "two dead letters", func() bool { return len(e.streamMsgs(t, bus.DLQStream)) == 2 })
	if n := len(sink.events()); n != 18 {
		t.Errorf("%d events delivered, want 18", n)
	}
	sink.mu.Lock()
	// Delivered MaxDeliver-1 = 3 times to the sink, which is asked to
	// write it up to holdAttempts (3) times a delivery: once in its first
	// batch, then alone.
	if seen[poison] != 1+3+3 {
		t.Errorf("the sink was asked %d times to write the refused event, want 7", seen[poison])
	}
	sink.mu.Unlock()
	for _, m := range e.streamMsgs(t, bus.DLQStream) {
		if err := schema.Validate(m.Data); err != nil {
			t.Fatal(err)
		}
		var ev dlqEvent
		_ = json.Unmarshal(m.Data, &ev)
		if m.Header.Get(collector.HeaderSink) != "siem" {
			t.Errorf("%s: sink header %q", m.Subject, m.Header.Get(collector.HeaderSink))
		}
		switch m.Subject {
		case "sandtrail.dlq.rejected":
			if ev.Message != "HTTP 400 mapper_parsing_exception" || ev.Metadata.OriginalEventUID != rejected || ev.Metadata.EventCode != "DLQ_REJECTED" {
				t.Errorf("rejected: %+v", ev)
			}
		case "sandtrail.dlq.max_deliveries":
			if !strings.Contains(ev.Message, "delivered 4 times") || !strings.Contains(ev.Message, "last failure: HTTP 429 Too Many Requests") {
				t.Errorf("max deliveries: message %q", ev.Message)
			}
			if ev.Metadata.EventCode != "DLQ_MAX_DELIVERIES" {
				t.Errorf("max deliveries: event code %s", ev.Metadata.EventCode)
			}
		default:
			t.Errorf("unexpected dead letter on %s", m.Subject)
		}
	}
	for _, reason := range []string{"rejected", "max_deliveries"} {
		if n := metric(t, c.Registry(), "sandtrail_collector_events_dead_lettered_total", "sink", "siem", "reason", reason); n != 1 {
			t.Errorf("dead_lettered_total{reason=%s} = %v, want 1", reason, n)
		}
	}
}
