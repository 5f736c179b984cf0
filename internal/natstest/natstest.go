// Package natstest starts in-process NATS JetStream clusters for tests.
// It is internal: no user should import it.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus/embedded"
)

// StartCluster starts n clustered servers named n1..nN on 127.0.0.1, with
// every route configured up front (a JetStream node does not start
// without its routes). The route ports are picked before the servers
// start, so another process can take one in between ("address already in
// use"); StartCluster then starts over with new ports, a few times. The
// servers are shut down when the test ends.
func StartCluster(t testing.TB, n int, name string) []*embedded.Server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		routes := make([]string, n)
		for i := range routes {
			routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(freePort(t))
		}
		servers, err := tryCluster(t, name, routes)
		if err == nil {
			return servers
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start a %d-node cluster: %v", n, err)
		}
	}
}

// tryCluster starts one server per route; on failure it stops those it
// started and returns the error.
func tryCluster(t testing.TB, name string, routes []string) ([]*embedded.Server, error) {
	t.Helper()
	var servers []*embedded.Server
	for i := range routes {
		cfg := embedded.Config{
			Listen:     "127.0.0.1:0",
			StoreDir:   t.TempDir(),
			ServerName: "n" + strconv.Itoa(i+1),
			Logger:     zerolog.Nop(),
			Cluster: embedded.Cluster{
				Name:   name,
				Listen: strings.TrimPrefix(routes[i], "nats-route://"),
				Routes: routes,
			},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		s, err := embedded.Start(ctx, cfg)
		cancel()
		if err != nil {
			for _, started := range servers {
				_ = started.Shutdown(context.Background())
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	}
	return servers, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(fmt.Errorf("free port: %w", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
