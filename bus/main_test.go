package bus_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

// TestMain fails the run if any test leaves a goroutine behind: servers
// and connections must be fully stopped by the tests' cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is an io.Writer safe for the concurrent writes of loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger returns a logger at trace level whose output is shown only if
// the test fails. It writes to a buffer, never to t: a connection's
// callbacks may log after the test has returned.
func testLogger(t *testing.T) (zerolog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log output:\n%s", buf)
		}
	})
	return zerolog.New(buf).Level(zerolog.TraceLevel).With().Timestamp().Logger(), buf
}

// startServer starts an embedded server on a random port with a temporary
// store, and shuts it down when the test ends.
func startServer(t *testing.T, cfg embedded.Config) *embedded.Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	log, _ := testLogger(t)
	cfg.Logger = log.Level(zerolog.InfoLevel)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("embedded.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// slowAuth is the ConnectTimeout of tests, generous for a machine loaded
// by parallel test runs under the race detector: the server checks a
// bcrypt hash at each connect to testdata/auth.conf.
const slowAuth = 10 * time.Second

// connect connects with cfg and closes the connection when the test ends.
func connect(t *testing.T, cfg bus.ConnConfig) *nats.Conn {
	t.Helper()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = slowAuth
	}
	log, _ := testLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*slowAuth)
	defer cancel()
	nc, err := bus.Connect(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testStreams keeps test streams small: the 10 GiB default would be
// reserved against the test machine's disk.
func testStreams() bus.Streams {
	return bus.Streams{
		Events: bus.StreamConfig{MaxBytes: 64 << 20},
		DLQ:    bus.StreamConfig{MaxBytes: 16 << 20},
	}
}

// poll calls f until it returns nil or ctx ends, and returns f's last
// error in that case.
func poll(ctx context.Context, every time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}
