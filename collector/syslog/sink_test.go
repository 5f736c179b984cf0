package syslog_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/syslog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tcpReceiver is a plaintext octet-counting receiver for the failures
// rsyslog cannot be made to produce on cue: a reset on accept, a receiver
// that stops reading.
type tcpReceiver struct {
	ln   net.Listener
	mode chan string // "read", "reset" or "hang", read at each accept
	wg   sync.WaitGroup

	mu     sync.Mutex
	frames []string
	conns  []net.Conn
}

func startTCP(t *testing.T, mode string) *tcpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpReceiver{ln: ln, mode: make(chan string, 1)}
	r.mode <- mode
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *tcpReceiver) setMode(m string) { <-r.mode; r.mode <- m }

func (r *tcpReceiver) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		m := <-r.mode
		r.mode <- m
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		switch m {
		case "reset": // once the client is connected and writing
			time.Sleep(50 * time.Millisecond)
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		case "hang": // accept and never read
		default:
			r.wg.Add(1)
			go r.read(c)
		}
	}
}

func (r *tcpReceiver) read(c net.Conn) {
	defer r.wg.Done()
	br := bufio.NewReader(c)
	for {
		l, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
		if err != nil {
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		r.mu.Lock()
		r.frames = append(r.frames, string(b))
		r.mu.Unlock()
	}
}

func (r *tcpReceiver) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *tcpReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

func tcpSink(t *testing.T, addr string, tweak func(*syslog.Config)) *syslog.Sink {
	t.Helper()
	cfg := syslog.Config{Address: addr, Transport: syslog.TransportTCP, Backoff: time.Millisecond, BackoffMax: time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := syslog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// bigBatch is more than socket buffers hold, so that a write to a peer
// that does not read blocks, and one to a peer that reset fails.
func bigBatch() []collector.Event {
	evs := make([]collector.Event, 32)
	for i := range evs {
		evs[i] = sinktest.LargeEvent(256 << 10)
	}
	return evs
}

func wantAll(t *testing.T, outs []collector.Outcome, want collector.Status, reason string) {
	t.Helper()
	for i, o := range outs {
		if o.Status != want || !strings.Contains(o.Reason, reason) {
			t.Fatalf("event %d: got %s (%q), want %s with %q", i, o.Status, o.Reason, want, reason)
		}
	}
}

// TestWriteErrorResendsBatch: a connection reset while the batch is being
// written marks the whole batch Retry; written again, it is delivered on a
// new connection.
func TestWriteErrorResendsBatch(t *testing.T) {
	recv := startTCP(t, "reset")
	s := tcpSink(t, recv.ln.Addr().String(), func(c *syslog.Config) {
		c.AcceptWait = -1 // let the write itself meet the reset
		c.MaxMessageSize = 300 << 10
	})
	batch := bigBatch()
	wantAll(t, s.Write(t.Context(), batch), collector.Retry, "the batch is resent")
	if st := s.Stats(); st.Resent != 1 {
		t.Fatalf("stats %+v, want one resent batch", st)
	}
	recv.setMode("read")
	time.Sleep(5 * time.Millisecond) // past the backoff
	wantAll(t, s.Write(t.Context(), batch), collector.Delivered, "")
	deadline := time.Now().Add(5 * time.Second)
	for recv.count() < len(batch) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := recv.count(); n != len(batch) {
		t.Fatalf("receiver got %d frames, want %d", n, len(batch))
	}
}

// TestStuckReceiver: a receiver that stops reading makes Write give up at
// WriteTimeout, or as soon as its context ends, with every event Retry.
func TestStuckReceiver(t *testing.T) {
	recv := startTCP(t, "hang")
	s := tcpSink(t, recv.ln.Addr().String(), func(c *syslog.Config) {
		c.WriteTimeout = 200 * time.Millisecond
		c.MaxMessageSize = 300 << 10
	})
	start := time.Now()
	wantAll(t, s.Write(t.Context(), bigBatch()), collector.Retry, "timeout")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Write took %s with a 200ms write timeout", d)
	}

	s = tcpSink(t, recv.ln.Addr().String(), func(c *syslog.Config) { c.MaxMessageSize = 300 << 10 })
	batch := bigBatch()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	start = time.Now()
	wantAll(t, s.Write(ctx, batch), collector.Retry, "context canceled")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Write took %s after its context was cancelled", d)
	}
}

// TestCloseDuringWrite: Close waits for a Write in progress until its own
// context ends, then closes the connection under it.
func TestCloseDuringWrite(t *testing.T) {
	recv := startTCP(t, "hang")
	s := tcpSink(t, recv.ln.Addr().String(), func(c *syslog.Config) { c.MaxMessageSize = 300 << 10; c.AcceptWait = -1 })
	done := make(chan []collector.Outcome)
	batch := bigBatch()
	go func() { done <- s.Write(context.Background(), batch) }()
	for recv.accepted() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // writing, and blocked: the receiver does not read
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want the deadline", err)
	}
	select {
	case outs := <-done:
		wantAll(t, outs, collector.Retry, "")
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after Close closed its connection")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantAll(t, s.Write(context.Background(), sinktest.Events(2)), collector.Retry, "closed")
}

// TestBackoff: after a failed connection the sink does not dial again
// before the backoff passed, and says when to come back.
func TestBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := tcpSink(t, addr, func(c *syslog.Config) { c.Backoff, c.BackoffMax = time.Hour, 2*time.Hour })
	outs := s.Write(t.Context(), sinktest.Events(2))
	wantAll(t, outs, collector.Retry, "refused")
	if outs[0].RetryAfter < 59*time.Minute {
		t.Fatalf("RetryAfter %s, want the 1h backoff", outs[0].RetryAfter)
	}
	outs = s.Write(t.Context(), sinktest.Events(2))
	wantAll(t, outs, collector.Retry, "reconnect to "+addr+" in")
	if outs[0].RetryAfter < 59*time.Minute || outs[0].RetryAfter > time.Hour {
		t.Fatalf("RetryAfter %s, want what is left of the 1h backoff", outs[0].RetryAfter)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  syslog.Config
		want string
	}{
		{"no address", syslog.Config{}, "address is required"},
		{"no port", syslog.Config{Address: "host"}, "want host:port"},
		{"transport", syslog.Config{Address: "h:1", Transport: "udp"}, `transport "udp"`},
		{"tls on tcp", syslog.Config{Address: "h:1", Transport: "tcp", TLS: syslog.TLSConfig{CAFile: "x"}}, "tls is set"},
		{"cert alone", syslog.Config{Address: "h:1", TLS: syslog.TLSConfig{CertFile: "c"}}, "go together"},
		{"facility", syslog.Config{Address: "h:1", Facility: "local9"}, `facility "local9"`},
		{"app name", syslog.Config{Address: "h:1", AppName: "two words"}, "app_name"},
		{"size", syslog.Config{Address: "h:1", MaxMessageSize: 100}, "max_message_size 100"},
		{"backoff", syslog.Config{Address: "h:1", Backoff: time.Minute, BackoffMax: time.Second}, "backoff_max"},
		{"missing CA", syslog.Config{Address: "h:1", TLS: syslog.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := syslog.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%v): got %v, want an error with %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestConfigString(t *testing.T) {
	cfg := syslog.Config{Address: "siem:6514", TLS: syslog.TLSConfig{CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem"}}
	want := "syslog{address=siem:6514 tls.cert_file=/etc/c.pem tls.key_file=/etc/k.pem}"
	if got := cfg.String(); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestDecodeStrict: the collector's strict decoder reads the Config from
// YAML, durations with units, and names unknown keys.
func TestDecodeStrict(t *testing.T) {
	doc := `
address: siem.example.net:6514
facility: local7
max_message_size: 131072
backoff: 2s
tls:
  ca_file: /etc/sandtrail/siem-ca.pem
  cert_file: /etc/sandtrail/collector.pem
  key_file: /etc/sandtrail/collector-key.pem
`
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &node); err != nil {
		t.Fatal(err)
	}
	var cfg syslog.Config
	if err := collector.DecodeStrict(&node, "collector.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	want := syslog.Config{Address: "siem.example.net:6514", Facility: "local7", MaxMessageSize: 131072, Backoff: 2 * time.Second,
		TLS: syslog.TLSConfig{CAFile: "/etc/sandtrail/siem-ca.pem", CertFile: "/etc/sandtrail/collector.pem", KeyFile: "/etc/sandtrail/collector-key.pem"}}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
	if err := yaml.Unmarshal([]byte("adress: x:1\n"), &node); err != nil {
		t.Fatal(err)
	}
	err := collector.DecodeStrict(&node, "collector.yaml", &syslog.Config{})
	if err == nil || !strings.Contains(err.Error(), "collector.yaml:1:1: adress: unknown key (did you mean address?)") {
		t.Fatalf("unknown key: got %v", err)
	}
}
