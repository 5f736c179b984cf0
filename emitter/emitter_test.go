package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a real embedded NATS server with the sandtrail streams.
type env struct {
	srv *embedded.Server
	js  jetstream.JetStream
}

func startServer(t *testing.T, listen, store string) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{Listen: listen, StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := startServer(t, "127.0.0.1:0", t.TempDir())
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return &env{srv: srv, js: connect(t, srv.ClientURL())}
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{url}, RetryOnFailedConnect: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.Streams{Events: bus.StreamConfig{MaxBytes: 256 << 20}, DLQ: bus.StreamConfig{MaxBytes: 16 << 20}}); err != nil {
		t.Fatal(err)
	}
	return js
}

func finding(control string) *schema.ComplianceFinding {
	e := schema.NewComplianceFinding(schema.ComplianceFindingActivityIDCreate)
	e.SeverityID = schema.SeverityIDInformational
	e.Compliance = &schema.Compliance{Control: control, StatusID: schema.ComplianceStatusIDPass}
	e.FindingInfo = &schema.FindingInfo{UID: "run/" + control, Title: control + " applied"}
	e.Metadata = &schema.Metadata{EventCode: "CONTROL_APPLIED"}
	return e
}

func newEmitter(t *testing.T, dir string, pub emitter.Publisher) *emitter.Emitter {
	t.Helper()
	em, err := emitter.New(emitter.Config{
		Spool:          spool.Config{Dir: dir},
		Publisher:      pub,
		Host:           emitter.Host{Hostname: "test-host.example", MachineID: "0123456789abcdef0123456789abcdef", KernelRelease: "6.18.0"},
		ProductVersion: "test",
		RetryMin:       20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		AckTimeout:     2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return em
}

// runEmitter runs the publisher until the test ends.
func runEmitter(t *testing.T, em *emitter.Emitter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- em.Run(ctx) }()
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = em.Close(cctx)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

type stored struct {
	subject string
	msgID   string
	event   map[string]any
}

// readStream returns every event message in stream order.
func readStream(t *testing.T, js jetstream.JetStream) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		if err := schema.Validate(m.Data); err != nil {
			t.Errorf("stream message %d is invalid: %v", seq, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{subject: m.Subject, msgID: m.Header.Get("Nats-Msg-Id"), event: ev})
	}
	return out
}

func metadata(s stored) map[string]any { return s.event["metadata"].(map[string]any) }

func TestEmitPublishesInOrderWithEnvelope(t *testing.T) {
	e := newEnv(t)
	em := newEmitter(t, t.TempDir(), e.js)
	runEmitter(t, em)
	ctx := context.Background()
	tr := em.Trail("run-1")
	controls := []string{"capability_bounding_set", "capabilities", "privilege_drop", "no_new_privs", "seccomp", "landlock"}
	var batch []schema.Event
	for _, c := range controls {
		batch = append(batch, finding(c))
	}
	if err := tr.Emit(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if err := tr.Emit(ctx, finding("rlimits")); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := em.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	got := readStream(t, e.js)
	if len(got) != 7 {
		t.Fatalf("stream has %d events, want 7", len(got))
	}
	for i, s := range got {
		md := metadata(s)
		if seq := md["sequence"].(float64); int(seq) != i+1 {
			t.Errorf("event %d: sequence %v", i, seq)
		}
		if md["correlation_uid"] != "run-1" || md["uid"] != s.msgID || md["log_name"] != s.subject {
			t.Errorf("event %d: envelope %v, msg id %q, subject %q", i, md, s.msgID, s.subject)
		}
		if want := bus.EventSubject(2003, 1, "test-host.example"); s.subject != want {
			t.Errorf("subject %q, want %q", s.subject, want)
		}
		dev := s.event["device"].(map[string]any)
		if dev["hostname"] != "test-host.example" || dev["uid"] != "0123456789abcdef0123456789abcdef" {
			t.Errorf("device %v", dev)
		}
	}
	if tr.Seq() != 7 {
		t.Errorf("Seq = %d", tr.Seq())
	}
	st := em.Stats()
	if st.Emitted != 7 || st.Published != 7 {
		t.Errorf("stats %+v", st)
	}
}

func TestEmitRejectsInvalidBatchWhole(t *testing.T) {
	em := newEmitter(t, t.TempDir(), nil)
	defer em.Close(context.Background())
	tr := em.Trail("run-2")
	bad := finding("seccomp")
	bad.Compliance = nil // required
	err := tr.Emit(context.Background(), finding("no_new_privs"), bad)
	var ve *schema.ValidationError
	if !errors.As(err, &ve) || ve.Path != "/compliance" {
		t.Fatalf("Emit = %v, want a validation error at /compliance", err)
	}
	if em.Pending() != 0 || tr.Seq() != 0 {
		t.Errorf("after a rejected batch: %d pending, seq %d; want nothing spooled", em.Pending(), tr.Seq())
	}
	if err := tr.Emit(context.Background(), finding("no_new_privs")); err != nil {
		t.Fatal(err)
	}
	if em.Pending() != 1 || tr.Seq() != 1 {
		t.Errorf("%d pending, seq %d; want 1, 1", em.Pending(), tr.Seq())
	}
}

// The server is down while events are emitted and comes back 10 s later:
// Emit never waits for it, and every event arrives once, in order.
func TestServerDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s of a server outage; -short")
	}
	store := t.TempDir()
	srv := startServer(t, "127.0.0.1:0", store)
	url := srv.ClientURL()
	js := connect(t, url)
	em := newEmitter(t, t.TempDir(), js)
	runEmitter(t, em)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr := em.Trail("run-outage")
	start := time.Now()
	for i := 0; i < 50; i++ {
		if err := tr.Emit(ctx, finding(fmt.Sprintf("control_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Emit waited for the bus: 50 events took %v", d)
	}
	time.Sleep(10 * time.Second)
	srv2 := startServer(t, url[len("nats://"):], store)
	defer srv2.Shutdown(context.Background())
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := em.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	got := readStream(t, js)
	if len(got) != 50 {
		t.Fatalf("stream has %d events, want 50", len(got))
	}
	for i, s := range got {
		if seq := int(metadata(s)["sequence"].(float64)); seq != i+1 {
			t.Fatalf("event %d has sequence %d: out of order or duplicated", i, seq)
		}
	}
}
