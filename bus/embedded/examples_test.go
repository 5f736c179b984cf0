package embedded_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestClusterExampleConfigs keeps docs/examples/nats-cluster valid: each
// node's file parses with nats-server's own loader and describes the same
// three-node JetStream cluster. The cluster's behaviour (R3 stream, leader
// loss) is tested with in-process nodes in package bus and emitter.
func TestClusterExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../docs/examples/nats-cluster/nats-*.conf")
	if err != nil || len(files) != 3 {
		t.Fatalf("want 3 example node configs, got %v (%v)", files, err)
	}
	for i, f := range files {
		opts, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := fmt.Sprintf("nats-%d", i+1)
		if opts.ServerName != want || !opts.JetStream || opts.Cluster.Name != "sandtrail" || len(opts.Routes) != 3 || opts.Port != 4222 || opts.Cluster.Port != 6222 {
			t.Errorf("%s: server %q jetstream %v cluster %q routes %d ports %d/%d", f, opts.ServerName, opts.JetStream, opts.Cluster.Name, len(opts.Routes), opts.Port, opts.Cluster.Port)
		}
	}
}
