package elastic_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/internal/receivers/victorialogs"
)

// TestVictoriaLogs delivers batches to a real bulk API receiver
// (VictoriaLogs' /insert/elasticsearch/_bulk, which parses and stores the
// documents) and checks the stored rows, never the status: VictoriaLogs
// answers 201 for every item whatever it stored.
func TestVictoriaLogs(t *testing.T) {
	vl := victorialogs.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const run = "es-run"
	s := newSink(t, elastic.Config{URL: vl.ElasticURL()})

	const n = 120
	evs := sinktest.SmallEvents(n, run)
	for start := 0; start < n; start += 50 {
		batch := evs[start:min(start+50, n)]
		sinktest.CheckAll(t, s.Write(ctx, batch), len(batch), collector.Delivered, "")
	}
	all := fmt.Sprintf(`metadata.correlation_uid:=%q`, run)
	if got, err := vl.WaitCount(ctx, all, n); err != nil || got != n {
		t.Fatalf("rows of %s = %d, %v; want %d\n%s", run, got, err, n, vl.Output())
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{all + ` class_uid:=1007`, n / 3},
		{all + ` class_uid:=2003`, n - n/3},
		{all + ` device.hostname:=host-1 severity_id:=1`, n},
		{fmt.Sprintf(`metadata.uid:=%q`, run+"-0042"), 1},
		{all + ` _msg:="event 7 <&>"`, 1}, // the message field, as the URL's _msg_field says
	} {
		if got, err := vl.Count(ctx, c.query); err != nil || got != c.want {
			t.Errorf("Count(%s) = %d, %v; want %d", c.query, got, err, c.want)
		}
	}
	// The row's time is the added @timestamp: the event's OCSF time.
	rows, err := vl.Query(ctx, fmt.Sprintf(`metadata.uid:=%q`, run+"-0042"))
	if err != nil || len(rows) != 1 {
		t.Fatalf("Query = %v, %v", rows, err)
	}
	want := time.UnixMilli(evs[42].Time).UTC()
	if got, err := time.Parse(time.RFC3339Nano, rows[0]["_time"]); err != nil || !got.Equal(want) {
		t.Errorf("_time = %q, want %v", rows[0]["_time"], want.Format(elastic.Timestamp))
	}
}

// TestVictoriaLogsFixtures sends every example event of the repository, as
// published (pretty-printed JSON included), and finds each one stored.
func TestVictoriaLogsFixtures(t *testing.T) {
	vl := victorialogs.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := newSink(t, elastic.Config{URL: vl.ElasticURL()})
	evs := sinktest.FixtureEvents(t, "../../testdata/events/valid/*/*.json")
	sinktest.CheckAll(t, s.Write(ctx, evs), len(evs), collector.Delivered, "")
	if got, err := vl.WaitCount(ctx, "*", len(evs)); err != nil || got != len(evs) {
		t.Fatalf("rows = %d, %v; want %d\n%s", got, err, len(evs), vl.Output())
	}
	for _, e := range evs {
		q := fmt.Sprintf(`metadata.uid:=%q class_uid:=%d`, e.UID, e.ClassUID)
		if got, err := vl.Count(ctx, q); err != nil || got < 1 {
			t.Errorf("Count(%s) = %d, %v; want at least 1", q, got, err)
		}
	}
}

// TestConformance runs the collector.Sink conformance suite against
// VictoriaLogs' bulk API: Break stops it (connection refused), Restore
// starts it again with the same storage. VictoriaLogs flattens documents
// and keeps duplicates (it ignores _id), so Read gives uids only and the
// receiver is not idempotent; the Reject subtest and idempotence run
// against the fake below.
func TestConformance(t *testing.T) {
	vl := victorialogs.Start(t)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := elastic.New(elastic.Config{URL: vl.ElasticURL()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			rows, err := vl.Query(t.Context(), `metadata.uid:* | fields metadata.uid`)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]sinktest.Received, len(rows))
			for i, r := range rows {
				got[i] = sinktest.Received{UID: r["metadata.uid"]}
			}
			return got
		},
		Break:   func(t *testing.T) { vl.Stop(t) },
		Restore: func(t *testing.T) { vl.Restart(t) },
		Settle:  10 * time.Second,
	})
}

// TestConformanceFake runs the suite against the bulk API fake (see fakeES
// for the documented protocol it follows): idempotent by _id, a poison
// event refused with a per-item 400, Break answering 503 with Retry-After.
// The documents come back with @timestamp added; Read removes it, so the
// suite compares the rest with the event as written.
func TestConformanceFake(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := elastic.New(elastic.Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			keys, docs := fake.stored()
			got := make([]sinktest.Received, len(keys))
			for i, k := range keys {
				got[i] = sinktest.Received{UID: k[len(elastic.DefaultIndex)+1:], Data: withoutTimestamp(t, docs[k])}
			}
			return got
		},
		Break:      func(*testing.T) { fake.setStatus(503, "1") },
		Restore:    func(*testing.T) { fake.setStatus(0, "") },
		Reject:     func(*testing.T) collector.Event { return mark(sinktest.Events(1)[0], "poison") },
		Idempotent: true,
	})
}

// withoutTimestamp undoes the sink's one transformation: the leading
// "@timestamp" member.
func withoutTimestamp(t *testing.T, doc []byte) []byte {
	t.Helper()
	const prefix = `{"@timestamp":"2006-01-02T15:04:05.000Z"`
	if len(doc) < len(prefix)+1 || string(doc[:len(`{"@timestamp":"`)]) != `{"@timestamp":"` {
		t.Fatalf("document without a leading @timestamp: %.80s", doc)
	}
	rest := doc[len(prefix):]
	if rest[0] == ',' {
		rest = rest[1:]
	}
	return append([]byte("{"), rest...)
}
