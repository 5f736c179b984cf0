package replay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

// TestMain fails the run if a test leaves a goroutine behind: Read must
// stop its consumer before it returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStream starts an embedded server with sandtrail's streams (events in
// memory, maxBytes large) and returns a JetStream context on it.
func newStream(tb testing.TB, maxBytes int64) jetstream.JetStream {
	return newStreamStorage(tb, maxBytes, jetstream.MemoryStorage)
}

func newStreamStorage(tb testing.TB, maxBytes int64, storage jetstream.StorageType) jetstream.JetStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: tb.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("embedded.Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	err = bus.EnsureStreams(ctx, js, bus.Streams{
		Events: bus.StreamConfig{Storage: storage, MaxBytes: maxBytes, MaxAge: -1},
		DLQ:    bus.StreamConfig{Storage: jetstream.MemoryStorage, MaxBytes: 1 << 20},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// testEvent is a small event with the envelope fields replay reads.
type testEvent struct {
	Class, Severity int
	Host, Run       string
	Seq             int
	Time            time.Time
}

func (e testEvent) uid() string { return fmt.Sprintf("019ac6e2-0000-7000-8000-%012d", e.Seq) }

func (e testEvent) subject() string { return bus.EventSubject(e.Class, e.Severity, e.Host) }

func (e testEvent) json() []byte {
	return fmt.Appendf(nil, `{"class_uid":%d,"class_name":"Class %d","severity_id":%d,"severity":"Sev %d","time":%d,`+
		`"message":"event %d","metadata":{"correlation_uid":%q,"event_code":"TEST","sequence":%d,"uid":%q,"version":"1.8.0",`+
		`"product":{"name":"sandtrail","vendor_name":"sandtrail"}},"device":{"hostname":%q,"type_id":1},`+
		`"unmapped":{"note":"\"quoted\" {braces}"}}`,
		e.Class, e.Class, e.Severity, e.Severity, e.Time.UnixMilli(), e.Seq, e.Run, e.Seq, e.uid(), e.Host)
}

// publish publishes events asynchronously, with message ids, and waits for
// every acknowledgement.
func publish(tb testing.TB, js jetstream.JetStream, subjects []string, data [][]byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const window = 2000
	futures := make([]jetstream.PubAckFuture, 0, window)
	wait := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				tb.Fatalf("publish: %v", err)
			case <-ctx.Done():
				tb.Fatal("publish: no acknowledgement in time")
			}
		}
		futures = futures[:0]
	}
	for i := range data {
		f, err := js.PublishAsync(subjects[i], data[i])
		if err != nil {
			tb.Fatalf("publish %d: %v", i, err)
		}
		futures = append(futures, f)
		if len(futures) == window {
			wait()
		}
	}
	wait()
}
