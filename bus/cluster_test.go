package bus_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/internal/natstest"
)

// startCluster starts n clustered servers on 127.0.0.1, every node
// listing every route (natstest starts over with new route ports when
// another process took one in between).
func startCluster(t *testing.T, n int) []*embedded.Server {
	t.Helper()
	return natstest.StartCluster(t, n, "sandtrail-test")
}

// TestClusterLeaderFailover publishes to an R3 stream, kills the stream
// leader, and checks that publishing goes on after re-election and that no
// acknowledged message is lost.
func TestClusterLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster and waits for a re-election")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	servers := startCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc := connect(t, bus.ConnConfig{URLs: urls, ReconnectWait: 50 * time.Millisecond, MaxReconnectWait: 500 * time.Millisecond})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	cfg := testStreams()
	cfg.Events.Replicas, cfg.DLQ.Replicas = 3, 3
	// The JetStream API is unavailable until the meta leader is elected.
	err = poll(ctx, 100*time.Millisecond, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return bus.EnsureStreams(c, js, cfg)
	})
	if err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	// An attempt that times out may still have been stored: the message
	// id makes its retry a duplicate, which the stream drops.
	publish := func(i int) error {
		return poll(ctx, 50*time.Millisecond, func() error {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(c, bus.EventSubject(2004, 4, "h"), []byte(strconv.Itoa(i)), jetstream.WithMsgID("uid-"+strconv.Itoa(i)))
			return err
		})
	}
	const perPhase = 50
	for i := range perPhase {
		if err := publish(i); err != nil {
			t.Fatalf("publish %d before failover: %v", i, err)
		}
	}

	var leader string
	err = poll(ctx, 50*time.Millisecond, func() error {
		info := streamInfo(t, ctx, js, bus.EventsStream)
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("cluster info %+v", info.Cluster)
		}
		leader = info.Cluster.Leader
		return nil
	})
	if err != nil {
		t.Fatalf("stream leader: %v", err)
	}
	killed := slices.IndexFunc(servers, func(s *embedded.Server) bool { return s.Name() == leader })
	if killed < 0 {
		t.Fatalf("leader %q is none of the servers", leader)
	}
	start := time.Now()
	if err := servers[killed].Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown leader: %v", err)
	}

	for i := perPhase; i < 2*perPhase; i++ {
		if err := publish(i); err != nil {
			t.Fatalf("publish %d after killing the leader %s: %v", i, leader, err)
		}
	}
	t.Logf("killed leader %s; publishing resumed within %s", leader, time.Since(start).Round(time.Millisecond))

	// The survivors may still be settling (a meta leader lost with the
	// stream leader): ask again until the stream answers.
	var stream jetstream.Stream
	err = poll(ctx, 100*time.Millisecond, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		stream, err = js.Stream(c, bus.EventsStream)
		return err
	})
	if err != nil {
		t.Fatalf("stream after failover: %v", err)
	}
	info := stream.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == leader || info.Cluster.Leader == "" {
		t.Errorf("leader after failover: got %+v, want a new one", info.Cluster)
	}
	if got := info.State.Msgs; got != 2*perPhase {
		t.Errorf("messages: got %d, want %d", got, 2*perPhase)
	}
	var got []int
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		n, err := strconv.Atoi(string(msg.Data))
		if err != nil {
			t.Fatalf("message %d: %q", seq, msg.Data)
		}
		got = append(got, n)
	}
	want := make([]int, 2*perPhase)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		t.Errorf("payloads in stream order: got %v, want %v", got, want)
	}
}
