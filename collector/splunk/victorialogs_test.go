package splunk_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/splunk"
	"github.com/sandtrail/sandtrail/internal/receivers/victorialogs"
)

// TestVictoriaLogs delivers batches to a real HEC receiver (VictoriaLogs'
// /services/collector/event, which parses and stores the envelopes) and
// checks the stored rows, never the status code: VictoriaLogs answers 200
// even when it stores nothing.
func TestVictoriaLogs(t *testing.T) {
	vl := victorialogs.Start(t)
	for _, compression := range []string{splunk.CompressionGzip, splunk.CompressionNone} {
		t.Run(compression, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			run := "run-" + compression
			s := newSink(t, splunk.Config{URL: vl.HECURL(), Index: "security", Compression: compression})

			const n = 120
			evs := sinktest.SmallEvents(n, run)
			for start := 0; start < n; start += 50 { // several batches, the last one short
				batch := evs[start:min(start+50, n)]
				out := s.Write(ctx, batch)
				sinktest.CheckAll(t, out, len(batch), collector.Delivered, "")
			}

			all := fmt.Sprintf(`fields.run_id:=%q`, run)
			if got, err := vl.WaitCount(ctx, all, n); err != nil || got != n {
				t.Fatalf("rows of %s = %d, %v; want %d\n%s", run, got, err, n, vl.Output())
			}
			// The indexed fields, the envelope and the OCSF event itself are all searchable.
			for _, c := range []struct {
				query string
				want  int
			}{
				{all + ` fields.class_uid:=1007`, n / 3},
				{all + ` fields.class_uid:=2003`, n - n/3},
				{all + ` event.class_uid:=2003`, n - n/3},
				{all + ` sourcetype:="ocsf:process_activity"`, n / 3},
				{all + ` sourcetype:="ocsf:compliance_finding" source:=sandtrail index:=security host:=host-1`, n - n/3},
				{fmt.Sprintf(`fields.event_uid:=%q event.metadata.uid:=%q`, run+"-0042", run+"-0042"), 1},
				// VictoriaLogs stores event.message as the row's _msg.
				{all + ` _msg:="event 7 <&>"`, 1},
			} {
				if got, err := vl.Count(ctx, c.query); err != nil || got != c.want {
					t.Errorf("Count(%s) = %d, %v; want %d", c.query, got, err, c.want)
				}
			}
		})
	}
}

// TestVictoriaLogsFixtures sends every example event of the repository, as
// published (pretty-printed JSON included), and finds each one stored.
func TestVictoriaLogsFixtures(t *testing.T) {
	vl := victorialogs.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := newSink(t, splunk.Config{URL: vl.HECURL()})
	evs := sinktest.FixtureEvents(t, "../../testdata/events/valid/*/*.json")
	sinktest.CheckAll(t, s.Write(ctx, evs), len(evs), collector.Delivered, "")
	if got, err := vl.WaitCount(ctx, "*", len(evs)); err != nil || got != len(evs) {
		t.Fatalf("rows = %d, %v; want %d\n%s", got, err, len(evs), vl.Output())
	}
	for _, e := range evs {
		q := fmt.Sprintf(`fields.event_uid:=%q fields.class_uid:=%d sourcetype:=%q`, e.UID, e.ClassUID, splunk.Sourcetype(e.ClassName, e.ClassUID))
		if got, err := vl.Count(ctx, q); err != nil || got < 1 {
			t.Errorf("Count(%s) = %d, %v; want at least 1", q, got, err)
		}
	}
}
