package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

// Passwords of testdata/auth.conf, whose bcrypt hashes it holds.
const (
	supervisorPassword = "supervisor-test-password"
	collectorPassword  = "collector-test-password"
)

// wantViolation waits until nc reports the server's permissions violation
// for subject. The server answers a denied publish with an asynchronous
// -ERR, which nats.go keeps as the connection's last error.
func wantViolation(t *testing.T, nc *nats.Conn, kind, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	want := fmt.Sprintf("permissions violation for %s to %q", kind, subject)
	err := poll(ctx, 10*time.Millisecond, func() error {
		err := nc.LastError()
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			return nil
		}
		return fmt.Errorf("last error %v", err)
	})
	if err != nil {
		t.Errorf("got %v, want a %s", err, want)
	}
}

// TestAuthConfPermissions proves testdata/auth.conf: each user can do its
// own job and not the other's.
func TestAuthConfPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := startServer(t, embedded.Config{ConfigFile: "testdata/auth.conf"})
	url := []string{s.ClientURL()}

	supNC := connect(t, bus.ConnConfig{URLs: url, User: "supervisor", Password: supervisorPassword})
	sup, err := jetstream.New(supNC)
	if err != nil {
		t.Fatal(err)
	}
	colNC := connect(t, bus.ConnConfig{URLs: url, User: "collector", Password: collectorPassword})
	col, err := jetstream.New(colNC)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(2004, 4, "host-1")

	// The supervisor's job: set up the streams, publish events.
	if err := bus.EnsureStreams(ctx, sup, testStreams()); err != nil {
		t.Fatalf("supervisor: EnsureStreams: %v", err)
	}
	if _, err := sup.Publish(ctx, subject, []byte(`{"class_uid":2004}`), jetstream.WithMsgID("uid-1")); err != nil {
		t.Fatalf("supervisor: Publish: %v", err)
	}
	if err := supNC.LastError(); err != nil {
		t.Fatalf("supervisor: last error %v after its own job", err)
	}

	// The collector's job: read the events, ack them, dead-letter one.
	events, err := col.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatalf("collector: Stream: %v", err)
	}
	cons, err := events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "collector", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: bus.FilterClass(2004),
	})
	if err != nil {
		t.Fatalf("collector: create consumer: %v", err)
	}
	if _, err := cons.Info(ctx); err != nil {
		t.Fatalf("collector: consumer info: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("collector: Fetch: %v", err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, msg.Subject())
		if err := msg.DoubleAck(ctx); err != nil {
			t.Errorf("collector: ack: %v", err)
		}
	}
	if err := batch.Error(); err != nil {
		t.Errorf("collector: fetch: %v", err)
	}
	if len(got) != 1 || got[0] != subject {
		t.Errorf("collector: fetched %v, want [%s]", got, subject)
	}
	if _, err := col.Publish(ctx, bus.DLQSubject("schema_violation"), []byte("bad"), jetstream.WithMsgID("dlq-1")); err != nil {
		t.Errorf("collector: publish dead letter: %v", err)
	}
	if _, err := col.Stream(ctx, bus.DLQStream); err != nil {
		t.Errorf("collector: DLQ stream: %v", err)
	}
	if err := colNC.LastError(); err != nil {
		t.Fatalf("collector: last error %v after its own job", err)
	}

	// A denied request gets no answer: bound the wait.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 500*time.Millisecond) }

	t.Run("supervisor cannot read", func(t *testing.T) {
		stream, err := sup.Stream(ctx, bus.EventsStream) // stream info is allowed
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := short()
		defer cancel()
		_, err = stream.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "thief", AckPolicy: jetstream.AckExplicitPolicy})
		if err == nil {
			t.Fatal("supervisor: create consumer: got no error")
		}
		wantViolation(t, supNC, "publish", "$JS.API.CONSUMER.CREATE.SANDTRAIL_EVENTS.thief")

		// Not through the collector's consumer either, nor by direct get.
		c, cancel = short()
		defer cancel()
		if _, err := stream.Consumer(c, "collector"); err == nil {
			t.Error("supervisor: consumer info: got no error")
		}
		wantViolation(t, supNC, "publish", "$JS.API.CONSUMER.INFO.SANDTRAIL_EVENTS.collector")
		c, cancel = short()
		defer cancel()
		if _, err := stream.GetMsg(c, 1); err == nil {
			t.Error("supervisor: get message: got no error")
		}
		wantViolation(t, supNC, "publish", "$JS.API.STREAM.MSG.GET.SANDTRAIL_EVENTS")
	})

	t.Run("collector cannot publish events", func(t *testing.T) {
		forged := bus.EventSubject(2004, 1, "forged")
		c, cancel := short()
		defer cancel()
		if _, err := col.Publish(c, forged, []byte(`{}`)); err == nil {
			t.Fatal("collector: publish event: got no error")
		}
		wantViolation(t, colNC, "publish", forged)
		// Core NATS publish is refused the same way.
		if err := colNC.Publish("sandtrail.events.x", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := colNC.Flush(); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, colNC, "publish", "sandtrail.events.x")
		for _, subject := range []string{"sandtrail.events.2004.4.host", "sandtrail.events.2003.1.host"} {
			if err := colNC.Publish(subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			wantViolation(t, colNC, "publish", subject)
		}

		if n := streamInfo(t, ctx, sup, bus.EventsStream).State.Msgs; n != 1 {
			t.Errorf("events stream: got %d messages, want 1 (only the supervisor's)", n)
		}
		// Nor can it subscribe to live events, or delete the stream.
		if _, err := colNC.SubscribeSync(bus.EventsWildcard); err != nil {
			t.Fatal(err)
		}
		if err := colNC.Flush(); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, colNC, "subscription", bus.EventsWildcard)
		c, cancel = short()
		defer cancel()
		if err := col.DeleteStream(c, bus.EventsStream); err == nil {
			t.Error("collector: delete stream: got no error")
		}
		wantViolation(t, colNC, "publish", "$JS.API.STREAM.DELETE.SANDTRAIL_EVENTS")
	})
}
