package collector_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

// timingSink records, for every event its inner sink confirmed, how long
// after the event's time (stamped by Emit) the confirmation came.
type timingSink struct {
	collector.Sink
	mu   sync.Mutex
	lats []time.Duration
}

func (s *timingSink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	out := s.Sink.Write(ctx, batch)
	now := time.Now()
	s.mu.Lock()
	for i, o := range out {
		if o.Status == collector.Delivered {
			s.lats = append(s.lats, now.Sub(time.UnixMilli(batch[i].Time)))
		}
	}
	s.mu.Unlock()
	return out
}

func (s *timingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lats)
}

// BenchmarkEndToEndLatency measures, at 1,000 events/s for 5 s, the time
// from Emit (which stamps the event's time and spools it) through the
// emitter's publisher, JetStream and the collector to the ndjson sink's
// confirmation (written and fsynced). Goal: p99 under 1 s. The batch
// latency (MaxWait 200 ms) is part of it, as it would be in production.
//
//	go test ./collector -run '^$' -bench EndToEndLatency
func BenchmarkEndToEndLatency(b *testing.B) {
	const rate, seconds = 1000, 5
	e := startEnv(b, 0)
	nd, err := ndjson.New(ndjson.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ts := &timingSink{Sink: nd}
	_, stop := newCollector(b, e, collector.Config{
		Sinks: []collector.SinkConfig{{Name: "latency", Type: "ndjson", Sink: ts, MaxWait: 200 * time.Millisecond}},
	})
	defer stop()
	em, err := emitter.New(emitter.Config{Spool: spool.Config{Dir: b.TempDir()}, Publisher: e.js})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = em.Run(ctx) }()
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = em.Close(cctx)
		ccancel()
		cancel()
		<-done
	}()
	trail := em.Trail("latency-run")
	tick := time.NewTicker(10 * time.Millisecond) // 10 events per tick
	defer tick.Stop()
	total := rate * seconds
	b.ResetTimer()
	for sent := 0; sent < total; sent += 10 {
		<-tick.C
		evs := make([]schema.Event, 10)
		for i := range evs {
			ev := schema.NewComplianceFinding(schema.ComplianceFindingActivityIDCreate)
			ev.SeverityID = schema.SeverityIDInformational
			ev.Compliance = &schema.Compliance{Control: "seccomp", StatusID: schema.ComplianceStatusIDPass}
			ev.FindingInfo = &schema.FindingInfo{UID: "latency-run/seccomp", Title: "seccomp applied"}
			ev.Metadata = &schema.Metadata{EventCode: "SECCOMP_APPLIED"}
			evs[i] = ev
		}
		if err := trail.Emit(context.Background(), evs...); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for ts.count() < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	ts.mu.Lock()
	lats := slices.Clone(ts.lats)
	ts.mu.Unlock()
	if len(lats) < total {
		b.Fatalf("%d of %d events delivered within 60 s", len(lats), total)
	}
	slices.Sort(lats)
	q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1.0), "max-ms")
	b.ReportMetric(0, "ns/op")
}
