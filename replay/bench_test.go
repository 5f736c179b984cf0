package replay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
)

// BenchmarkReplay replays a file-backed stream of 100,000 copies of the
// 1.7 KB compliance finding of testdata/bench (unique uids and times):
// with a bare ordered consumer that only touches each message (the
// baseline), and with Read writing NDJSON, text or a summary to
// io.Discard. One op is the whole replay; msgs/s is the throughput.
func BenchmarkReplay(b *testing.B) {
	const n = 100_000
	tmpl, err := os.ReadFile("../testdata/bench/compliance_1k7.json")
	if err != nil {
		b.Fatal(err)
	}
	tmpl = bytes.TrimSpace(tmpl)
	js := newStreamStorage(b, 1<<30, jetstream.FileStorage)
	subjects, data := make([]string, n), make([][]byte, n)
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixMilli()
	for i := range data {
		ev := bytes.Replace(tmpl, []byte(`"time":1764263000123`), fmt.Appendf(nil, `"time":%d`, t0+int64(i)), 1)
		ev = bytes.Replace(ev, []byte(`"uid":"019ac6e2-4b1e-7a3c-9d2f-5e8b1c0a7f31"`), fmt.Appendf(nil, `"uid":"019ac6e2-4b1e-7a3c-9d2f-%012d"`, i), 1)
		subjects[i], data[i] = bus.EventSubject(2003, 1, "ci-runner-07"), ev
	}
	publish(b, js, subjects, data)
	ctx := context.Background()
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.SetBytes(int64(n * len(tmpl)))
	}

	b.Run("100k-1k7/ordered", func(b *testing.B) {
		for b.Loop() {
			stream, err := js.Stream(ctx, bus.EventsStream)
			if err != nil {
				b.Fatal(err)
			}
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.EventsWildcard}})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(2 * DefaultBatch))
			if err != nil {
				b.Fatal(err)
			}
			total := 0
			for i := 0; i < n; i++ {
				msg, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				total += len(msg.Data())
			}
			it.Stop()
		}
		report(b)
	})
	replayWith := func(b *testing.B, write func(w *bufio.Writer, ms []Message), reset func()) {
		for b.Loop() {
			if reset != nil {
				reset()
			}
			w := bufio.NewWriterSize(io.Discard, 256<<10)
			st, err := Read(ctx, js, Config{}, func(ms []Message) error { write(w, ms); return nil })
			if err != nil || st.Matched != n {
				b.Fatalf("Read: %+v, %v", st, err)
			}
			w.Flush()
		}
		report(b)
	}
	b.Run("100k-1k7/replay-ndjson", func(b *testing.B) {
		replayWith(b, func(w *bufio.Writer, ms []Message) {
			for i := range ms {
				w.Write(ms[i].Data)
				w.WriteByte('\n')
			}
		}, nil)
	})
	b.Run("100k-1k7/replay-text", func(b *testing.B) {
		replayWith(b, func(w *bufio.Writer, ms []Message) {
			for i := range ms {
				fmt.Fprintf(w, "%d %s %d %d %s#%d %s\n", ms[i].Time, ms[i].Host, ms[i].SeverityID, ms[i].ClassUID, ms[i].Run, ms[i].Envelope.Seq, ms[i].Message)
			}
		}, nil)
	})
	b.Run("100k-1k7/replay-summary", func(b *testing.B) {
		var s *Summary
		replayWith(b, func(w *bufio.Writer, ms []Message) {
			for i := range ms {
				s.Add(&ms[i])
			}
		}, func() { s = NewSummary(chain.VerifierConfig{}) })
	})
}
