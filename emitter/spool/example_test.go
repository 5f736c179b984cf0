package spool_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/sandtrail/sandtrail/emitter/spool"
)

// A launch spools its decision events before the sandbox starts; the
// publisher drains them and acknowledges after the server's PubAck.
func Example() {
	dir, err := os.MkdirTemp("", "spool-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, _, err := spool.Open(spool.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// One Append per launch: one fdatasync for all its events.
	err = s.Append(ctx, []byte(`{"class_uid":1007,"activity_id":1}`), []byte(`{"class_uid":6003,"activity_id":2}`))
	if errors.Is(err, spool.ErrFull) {
		log.Fatal("refusing to start the sandbox: ", err)
	}

	recs, err := s.Next(ctx, 100)
	if err != nil {
		log.Fatal(err)
	}
	var acked []spool.Position
	for _, r := range recs {
		// Publish r.Data with jetstream.WithMsgID(r.Pos.String()), then:
		fmt.Printf("%s\n", r.Data)
		acked = append(acked, r.Pos)
	}
	if err := s.Ack(acked...); err != nil {
		log.Fatal(err)
	}
	fmt.Println("pending:", s.Stats().Pending)
	// Output:
	// {"class_uid":1007,"activity_id":1}
	// {"class_uid":6003,"activity_id":2}
	// pending: 0
}
