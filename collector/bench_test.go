package collector_test

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/internal/receivers/victorialogs"
	"github.com/sandtrail/sandtrail/schema"
)

// BenchmarkConsume compares, in one run and on one server, a raw durable
// pull consumer that acknowledges each message (the ceiling) with the
// collector exporting into ndjson files (validate, batch, write, fsync,
// acknowledge) and into the elastic sink against VictoriaLogs, for 1.7 KB
// events. ns/op is per event.
//
//	go test ./collector -run '^$' -bench Consume -count 5 | go run ./internal/benchratio -baseline jetstream
func BenchmarkConsume(b *testing.B) {
	data, err := os.ReadFile("../testdata/bench/compliance_1k7.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	if err := schema.Validate(data); err != nil {
		b.Fatal(err)
	}
	e := startEnv(b, 0)
	vl := victorialogs.Start(b) // for the elastic sink; .ci/run installs it
	subject := bus.EventSubject(2003, 1, "bench")
	// Both read n events of a stream holding a batch more: the collector
	// measures its steady state, not the wait for the last batch to fill.
	extra := collector.DefaultMaxEvents
	b.Run("1k7/jetstream", func(b *testing.B) {
		n := b.N
		fill(b, e, subject, data, n+extra)
		ctx := context.Background()
		cons, err := e.js.CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{
			Durable: "bench-raw", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: bus.EventsWildcard,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ResetTimer()
		start, cpu0 := time.Now(), cpuTime()
		it, err := cons.Messages()
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		it.Stop()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
		_ = e.js.DeleteConsumer(ctx, bus.EventsStream, "bench-raw")
	})
	b.Run("1k7/collector-ndjson", func(b *testing.B) { benchCollector(b, e, subject, data, extra, 0, ndjsonSink) })
	// The same with batches of 1024: a quarter of the fsyncs.
	b.Run("1k7/collector-ndjson-1024", func(b *testing.B) { benchCollector(b, e, subject, data, 4*extra, 1024, ndjsonSink) })
	// Into the elastic sink, against VictoriaLogs' Elasticsearch bulk API
	// (a real receiver, started once for every round of the benchmark).
	b.Run("1k7/collector-elastic", func(b *testing.B) {
		benchCollector(b, e, subject, data, extra, 0, func(b *testing.B) collector.Sink {
			s, err := elastic.New(elastic.Config{URL: vl.ElasticURL()})
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
}

// ndjsonSink is an ndjson sink into a temporary directory (or one under
// $SANDTRAIL_BENCH_DIR, to measure another disk).
func ndjsonSink(b *testing.B) collector.Sink {
	dir := b.TempDir()
	if d := os.Getenv("SANDTRAIL_BENCH_DIR"); d != "" {
		dir, _ = os.MkdirTemp(d, "bench")
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	nd, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	return nd
}

// benchCollector runs the collector into the sink newSink makes, over n
// events; maxEvents 0 is the default batch size.
func benchCollector(b *testing.B, e *env, subject string, data []byte, extra, maxEvents int, newSink func(*testing.B) collector.Sink) {
	n := b.N
	fill(b, e, subject, data, n+extra)
	cs := &countSink{Sink: newSink(b), want: int64(n), done: make(chan struct{})}
	c, err := collector.New(collector.Config{
		JetStream: e.js, Logger: zerolog.Nop(),
		Sinks: []collector.SinkConfig{{Name: "bench", Sink: cs, MaxEvents: maxEvents, Filter: collector.Filter{Hosts: []string{"bench"}}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { done <- c.Run(ctx) }()
	<-cs.done
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	cancel()
	<-done
	_ = c.Close(context.Background())
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
	_ = e.js.DeleteConsumer(context.Background(), bus.EventsStream, collector.ConsumerPrefix+"bench")
}

// cpuTime is the CPU time of the process (the embedded server included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fill empties the events stream and publishes n copies of data.
func fill(b *testing.B, e *env, subject string, data []byte, n int) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	fillT(b, e, subject, data, n)
	// Write back what filling left dirty (the stream's files), so that the
	// collector's first fsyncs do not pay for it (ext4 commits it with them).
	syscall.Sync()
}

func fillT(b testing.TB, e *env, subject string, data []byte, n int) {
	ctx := context.Background()
	s, err := e.js.Stream(ctx, bus.EventsStream)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		b.Fatal(err)
	}
	const window = 4096
	futures := make([]jetstream.PubAckFuture, 0, window)
	for i := 0; i < n; i++ {
		f, err := e.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data})
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
		if len(futures) == window || i == n-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
			futures = futures[:0]
		}
	}
}

// countSink signals when want events were delivered.
type countSink struct {
	collector.Sink
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countSink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	outs := c.Sink.Write(ctx, batch)
	var ok int64
	for _, o := range outs {
		if o.Status == collector.Delivered {
			ok++
		}
	}
	if c.n.Add(ok) >= c.want && c.n.Load()-ok < c.want {
		close(c.done)
	}
	return outs
}
