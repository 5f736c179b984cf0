package bus_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

// Example runs an embedded server, connects, makes sure the streams exist
// and publishes one event with its metadata.uid as message id.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sandtrail-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)

	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{srv.ClientURL()}}, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Defaults, except a size that fits any machine running the example.
	streams := bus.Streams{Events: bus.StreamConfig{MaxBytes: 64 << 20}, DLQ: bus.StreamConfig{MaxBytes: 16 << 20}}
	if err := bus.EnsureStreams(ctx, js, streams); err != nil {
		fmt.Println(err)
		return
	}

	subject := bus.EventSubject(2004, 4, "web-1.example.com")
	ack, err := js.Publish(ctx, subject, []byte(`{"class_uid":2004}`), jetstream.WithMsgID("0190b5d2-7c1e-7000-8000-000000000001"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(subject, "->", ack.Stream, ack.Sequence)
	// Output: sandtrail.events.2004.4.web-1_example_com -> SANDTRAIL_EVENTS 1
}
