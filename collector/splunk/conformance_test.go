package splunk_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/splunk"
	"github.com/sandtrail/sandtrail/internal/receivers/victorialogs"
)

// TestConformance runs the collector.Sink conformance suite against a real
// HEC receiver, VictoriaLogs: Break stops it (connection refused), Restore
// starts it again on the same port with the same storage. VictoriaLogs
// flattens the event into fields, so Read gives uids only, and it refuses
// nothing, so the Reject subtest runs against the fake below.
func TestConformance(t *testing.T) {
	vl := victorialogs.Start(t)
	tok := tokenFile(t)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := splunk.New(splunk.Config{URL: vl.HECURL(), TokenFile: tok})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			rows, err := vl.Query(t.Context(), `fields.event_uid:* | fields fields.event_uid`)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]sinktest.Received, len(rows))
			for i, r := range rows {
				got[i] = sinktest.Received{UID: r["fields.event_uid"]}
			}
			return got
		},
		Break:   func(t *testing.T) { vl.Stop(t) },
		Restore: func(t *testing.T) { vl.Restart(t) },
		Settle:  10 * time.Second,
	})
}

// TestConformanceFake runs the suite against the HEC fake (see fakeHEC for
// the documented protocol it follows), with indexer acknowledgement on:
// the fake gives the events back as sent, refuses a poison event with code
// 6, and Break makes it answer 503 Server is busy.
func TestConformanceFake(t *testing.T) {
	fake := newFakeHEC(testToken)
	fake.ack, fake.ackAfter = true, 1
	srv := fake.start()
	defer srv.Close()
	tok := tokenFile(t)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := splunk.New(splunk.Config{URL: srv.URL, TokenFile: tok, Ack: splunk.AckConfig{Enabled: true, PollInterval: 20 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			indexed, _, _ := fake.snapshot()
			got := make([]sinktest.Received, len(indexed))
			for i, e := range indexed {
				got[i] = sinktest.Received{UID: e.Fields["event_uid"], Data: e.Event}
			}
			return got
		},
		Break:   func(*testing.T) { fake.setDown(true) },
		Restore: func(*testing.T) { fake.setDown(false) },
		Reject: func(*testing.T) collector.Event {
			ev := sinktest.Events(1)[0]
			ev.Data = bytes.Replace(ev.Data, []byte(`"message":"`), []byte(`"message":"poison `), 1)
			return ev
		},
	})
}
