package embedded_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/bus/embedded"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, cfg embedded.Config) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func TestStartServesClients(t *testing.T) {
	logs := &lockedBuffer{}
	s := start(t, embedded.Config{
		Listen:      "127.0.0.1:0",
		MonitorAddr: "127.0.0.1:0",
		StoreDir:    t.TempDir(),
		ServerName:  "test-node",
		Logger:      zerolog.New(logs),
	})
	if got := s.Name(); got != "test-node" {
		t.Errorf("Name: got %q, want test-node", got)
	}
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Errorf("ClientURL: got %s, want nats://127.0.0.1:<bound port>", url)
	}
	if got := s.RouteURL(); got != "" {
		t.Errorf("RouteURL: got %q for a standalone server, want empty", got)
	}

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	// JetStream is on.
	resp, err := nc.Request("$JS.API.INFO", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("JetStream API: %v", err)
	}
	if strings.Contains(string(resp.Data), `"error"`) {
		t.Errorf("JetStream API: got %s, want account info", resp.Data)
	}

	mon := s.MonitorURL()
	if mon == "" {
		t.Fatal("MonitorURL: empty, want the monitoring endpoint")
	}
	hresp, err := http.Get(mon + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		t.Errorf("healthz: got status %d, want 200", hresp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()

	if out := logs.String(); !strings.Contains(out, `"component":"nats-server"`) || !strings.Contains(out, "Server is ready") {
		t.Errorf("logs: got %s, want the server's logs through zerolog", out)
	}
}

func TestShutdownWaitsAndIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.ClientURL(), "nats://")
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// Once Shutdown returned, the port is closed.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("dial %s after Shutdown: got a connection", addr)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	badConf := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(badConf, []byte("listen: [unterminated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     embedded.Config
		wantErr string
	}{
		{"no store dir", embedded.Config{Listen: "127.0.0.1:0"}, "StoreDir is required"},
		{"bad listen", embedded.Config{Listen: "127.0.0.1", StoreDir: "x"}, "Listen"},
		{"bad port", embedded.Config{Listen: "127.0.0.1:99999", StoreDir: "x"}, "invalid port"},
		{"port in use", embedded.Config{Listen: busy.Addr().String(), StoreDir: t.TempDir()}, "address already in use"},
		{"missing config file", embedded.Config{ConfigFile: "does-not-exist.conf", StoreDir: "x"}, "config file"},
		{"bad config file", embedded.Config{ConfigFile: badConf, StoreDir: "x"}, "config file"},
		{"cluster without name", embedded.Config{Listen: "127.0.0.1:0", StoreDir: "x", ServerName: "a",
			Cluster: embedded.Cluster{Listen: "127.0.0.1:0"}}, "Cluster.Name is required"},
		{"cluster without server name", embedded.Config{Listen: "127.0.0.1:0", StoreDir: "x",
			Cluster: embedded.Cluster{Name: "c", Listen: "127.0.0.1:0"}}, "ServerName is required"},
		{"negative timeout", embedded.Config{StoreDir: "x", StartTimeout: -1}, "negative StartTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := embedded.Start(ctx, tt.cfg)
			if err == nil {
				s.Shutdown(ctx)
				t.Fatalf("Start: got no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start: got %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("Start: got no error, want context.Canceled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start: got %v, want context.Canceled", err)
	}
}

func TestConfigFileAndOverrides(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	// The file's listen is replaced by Config.Listen; its store_dir is
	// used because Config.StoreDir is empty.
	text := "listen: 127.0.0.1:1\nserver_name: from-file\njetstream { store_dir: \"" + filepath.Join(dir, "js") + "\" }\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, embedded.Config{ConfigFile: conf, Listen: "127.0.0.1:0"})
	if got := s.Name(); got != "from-file" {
		t.Errorf("Name: got %q, want from-file", got)
	}
	if strings.HasSuffix(s.ClientURL(), ":1") {
		t.Errorf("ClientURL: got %s, want Listen to override the file", s.ClientURL())
	}
	if _, err := os.Stat(filepath.Join(dir, "js", "jetstream")); err != nil {
		t.Errorf("store_dir of the file not used: %v", err)
	}
}
