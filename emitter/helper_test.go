package emitter_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/internal/natstest"
)

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

// testLogger returns a debug logger whose output is shown only if the test
// fails. It writes to a buffer, never to t: a connection's callbacks may
// log after the test has returned.
func testLogger(t testing.TB) zerolog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log output:\n%s", buf)
		}
	})
	return zerolog.New(buf).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// poll calls f until it returns nil or ctx ends, and then returns f's last
// error.
func poll(ctx context.Context, every time.Duration, f func() error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on. The
// crash test uses it as a bus that never answers (whatever took it in
// between would not speak NATS either).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServerCfg starts an embedded server and shuts it down when the test
// ends (Shutdown is idempotent, so a test may stop it earlier).
func startServerCfg(t testing.TB, cfg embedded.Config) *embedded.Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	cfg.Logger = testLogger(t).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("embedded.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

// startServerAsync is startServerCfg for a goroutine other than the
// test's: it reports failure with t.Error.
func startServerAsync(t testing.TB, cfg embedded.Config) {
	cfg.Logger = testLogger(t).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Errorf("embedded.Start: %v", err)
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// hostPort strips the scheme of a client URL.
func hostPort(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		return url[i+3:]
	}
	return url
}

// dial connects with cfg (fast reconnects unless set) and closes the
// connection when the test ends.
func dial(t testing.TB, cfg bus.ConnConfig) *nats.Conn {
	t.Helper()
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait, cfg.MaxReconnectWait = 20*time.Millisecond, 250*time.Millisecond
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := bus.Connect(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("bus.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streams is the test stream setup: small limits, replicas as given.
func streams(replicas int) bus.Streams {
	return bus.Streams{
		Events: bus.StreamConfig{MaxBytes: 256 << 20, Replicas: replicas},
		DLQ:    bus.StreamConfig{MaxBytes: 16 << 20, Replicas: replicas},
	}
}

// ensureStreams creates the streams, retrying while a cluster elects its
// meta leader.
func ensureStreams(t testing.TB, js jetstream.JetStream, cfg bus.Streams) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := poll(ctx, 100*time.Millisecond, func() error {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return bus.EnsureStreams(c, js, cfg)
	})
	if err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
}

// emitterConfig is newEmitter's configuration, for tests that change it.
func emitterConfig(t testing.TB, dir string, pub emitter.Publisher) emitter.Config {
	return emitter.Config{
		Spool:          spool.Config{Dir: dir},
		Publisher:      pub,
		Host:           emitter.Host{Hostname: "test-host.example", MachineID: "0123456789abcdef0123456789abcdef", KernelRelease: "6.18.0"},
		ProductVersion: "test",
		RetryMin:       20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		AckTimeout:     2 * time.Second,
		Logger:         testLogger(t),
	}
}

func newEmitterCfg(t testing.TB, cfg emitter.Config) *emitter.Emitter {
	t.Helper()
	em, err := emitter.New(cfg)
	if err != nil {
		t.Fatalf("emitter.New: %v", err)
	}
	return em
}

// flush waits (bounded) until every spooled event is acknowledged.
//
// Flush fails at once while Run has not started, and runEmitter starts it
// on a goroutine that may not have run yet: retry that error only.
func flush(t testing.TB, em *emitter.Emitter, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := em.Flush(ctx)
	for err != nil && strings.Contains(err.Error(), "no publisher running") && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
		err = em.Flush(ctx)
	}
	if err != nil {
		t.Fatalf("Flush: %v (stats %+v)", err, em.Stats())
	}
}

// streamEvent is what the fault tests check of each stored message.
type streamEvent struct {
	StreamSeq uint64
	MsgID     string
	UID       string
	Run       string
	Seq       int
}

// readEvents returns every message of the events stream in stream order,
// read with an ordered consumer (one round trip per 1000 messages, where
// readStream needs one per message).
//
// Right after a cluster lost its stream or meta leader, the survivors can
// answer "no responders" or time out for a moment while they settle; a read
// that fails that way starts over with a new consumer (for up to a minute).
// Any other error, and a stream that stays unreadable, fails the test.
func readEvents(t testing.TB, js jetstream.JetStream) []streamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		out, err := readEventsOnce(ctx, js)
		if err == nil {
			return out
		}
		if !transientRead(err) || ctx.Err() != nil {
			t.Fatalf("read the events stream (attempt %d): %v", attempt, err)
		}
		t.Logf("read the events stream (attempt %d): %v; starting over", attempt, err)
		select {
		case <-ctx.Done():
			t.Fatalf("read the events stream: %v after %v", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// transientRead reports whether a read error is one a cluster gives while
// it elects a leader.
func transientRead(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

func readEventsOnce(ctx context.Context, js jetstream.JetStream) ([]streamEvent, error) {
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	want := s.CachedInfo().State.Msgs
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	var out []streamEvent
	for uint64(len(out)) < want {
		batch, err := cons.Fetch(int(min(want-uint64(len(out)), 1000)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			return nil, fmt.Errorf("fetch after %d of %d messages: %w", len(out), want, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("metadata: %w", err)
			}
			var ev struct {
				Metadata struct {
					UID            string `json:"uid"`
					CorrelationUID string `json:"correlation_uid"`
					Sequence       int    `json:"sequence"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				return nil, fmt.Errorf("message %d: %w", md.Sequence.Stream, err)
			}
			out = append(out, streamEvent{
				StreamSeq: md.Sequence.Stream,
				MsgID:     m.Headers().Get(jetstream.MsgIDHeader),
				UID:       ev.Metadata.UID,
				Run:       ev.Metadata.CorrelationUID,
				Seq:       ev.Metadata.Sequence,
			})
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("fetch after %d of %d messages: %w", len(out), want, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("fetch after %d of %d messages: %w", len(out), want, nats.ErrTimeout)
		}
	}
	return out, nil
}

// checkOnce checks the stream against what was emitted: every event
// exactly once (per run the sequences 1..n, each once), and Nats-Msg-Id =
// metadata.uid.
func checkOnce(t testing.TB, got []streamEvent, perRun map[string]int) {
	t.Helper()
	total := 0
	for _, n := range perRun {
		total += n
	}
	uids := make(map[string]int, len(got))
	seqs := map[string]map[int]int{}
	for _, e := range got {
		uids[e.UID]++
		if e.MsgID != e.UID {
			t.Errorf("stream seq %d: Nats-Msg-Id %q != metadata.uid %q", e.StreamSeq, e.MsgID, e.UID)
		}
		if seqs[e.Run] == nil {
			seqs[e.Run] = map[int]int{}
		}
		seqs[e.Run][e.Seq]++
	}
	if len(got) != total || len(uids) != total {
		t.Errorf("stream has %d messages with %d distinct uids, want %d each", len(got), len(uids), total)
	}
	for run, n := range perRun {
		var missing, twice []int
		for seq := 1; seq <= n; seq++ {
			switch seqs[run][seq] {
			case 0:
				missing = append(missing, seq)
			case 1:
			default:
				twice = append(twice, seq)
			}
		}
		if len(missing) > 0 || len(twice) > 0 || len(seqs[run]) != n {
			t.Errorf("run %s: %d distinct sequences, want 1..%d; missing %v, stored more than once %v",
				run, len(seqs[run]), n, head(missing), head(twice))
		}
	}
}

func head(s []int) []int { return s[:min(len(s), 10)] }

// orderViolations counts the events stored after a later event of their
// run, and describes the first.
func orderViolations(got []streamEvent) (n int, first string) {
	last := map[string]int{}
	for _, e := range got {
		if e.Seq <= last[e.Run] {
			if n == 0 {
				first = fmt.Sprintf("run %s: sequence %d stored (stream seq %d) after sequence %d", e.Run, e.Seq, e.StreamSeq, last[e.Run])
			}
			n++
			continue
		}
		last[e.Run] = e.Seq
	}
	return n, first
}

// checkDelivery is checkOnce, and each run's events in stream order.
func checkDelivery(t testing.TB, got []streamEvent, perRun map[string]int) {
	t.Helper()
	checkOnce(t, got, perRun)
	if n, first := orderViolations(got); n > 0 {
		t.Errorf("%d events stored out of their run's order; first: %s", n, first)
	}
}

// --- re-executed children -------------------------------------------------

// childEnv routes a re-executed test binary to TestChildProcess's mode.
const childEnv = "SANDTRAIL_EMITTER_TEST_CHILD"

// child is the test binary re-executed in a helper mode. Its stdout lines
// are collected; stdin stays open until finish, so a child blocked reading
// it waits to be killed.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr syncBuffer

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced when a line arrives
	eof   chan struct{} // closed when stdout is read to the end
}

// startChild runs the test binary bin (default: this one) in mode, with
// env added to the environment and cred as the credentials, if set.
func startChild(t *testing.T, bin, mode string, cred *syscall.Credential, env ...string) *child {
	t.Helper()
	if bin == "" {
		bin = os.Args[0]
	}
	c := &child{t: t, more: make(chan struct{}), eof: make(chan struct{})}
	c.cmd = exec.Command(bin, "-test.run=^TestChildProcess$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + mode}, env...)...)
	c.cmd.Stderr = &c.stderr
	if cred != nil {
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // ends when the child's stdout closes (it exited)
		defer close(c.eof)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.eof
		c.cmd.Wait()
	})
	return c
}

// waitLine waits for a stdout line starting with prefix and returns the
// rest of it.
func (c *child) waitLine(prefix string, d time.Duration) string {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for i := 0; ; {
		c.mu.Lock()
		for ; i < len(c.lines); i++ {
			if rest, ok := strings.CutPrefix(c.lines[i], prefix); ok {
				c.mu.Unlock()
				return strings.TrimSpace(rest)
			}
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-c.eof:
			c.mu.Lock()
			done := i == len(c.lines)
			c.mu.Unlock()
			if done {
				c.t.Fatalf("child exited without printing %q; stdout:\n%s\nstderr:\n%s", prefix, c.output(), c.stderr.String())
			}
		case <-timer.C:
			c.t.Fatalf("child printed no %q within %v; stdout:\n%s\nstderr:\n%s", prefix, d, c.output(), c.stderr.String())
		}
	}
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// kill sends SIGKILL and waits until the process is gone, so that its
// flock locks are released.
func (c *child) kill() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill: %v", err)
	}
	<-c.eof
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		c.t.Fatalf("child: got %v, want death by SIGKILL; stderr:\n%s", err, c.stderr.String())
	}
}

// finish closes stdin and waits for a successful exit.
func (c *child) finish(d time.Duration) {
	c.t.Helper()
	c.stdin.Close()
	select {
	case <-c.eof:
	case <-time.After(d):
		c.t.Fatalf("child still running after %v; stdout:\n%s\nstderr:\n%s", d, c.output(), c.stderr.String())
	}
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("child: %v; stdout:\n%s\nstderr:\n%s", err, c.output(), c.stderr.String())
	}
}

// copyBinary copies the test binary to dir (mode 0755), for a child
// running as another user, who cannot enter the go build cache.
func copyBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "emitter.test")
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// --- throwaway TLS PKI (as in bus/tls_test.go) -----------------------------

// testPKI is a CA and a server certificate for 127.0.0.1 and
// testServerName, made for one test; no key is committed.
type testPKI struct{ CAFile, ServerCert, ServerKey string }

const testServerName = "nats.sandtrail.test"

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writePEM := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sandtrail emitter test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{CAFile: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem")}
	writePEM(p.CAFile, "CERTIFICATE", caDER)
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: testServerName},
		DNSNames:     []string{testServerName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(p.ServerCert, "CERTIFICATE", der)
	writePEM(p.ServerKey, "EC PRIVATE KEY", keyDER)
	return p
}

// writeConfig writes a nats-server configuration file.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// --- cluster --------------------------------------------------------------

// startCluster starts n clustered servers on 127.0.0.1 with every route
// configured up front (see bus/cluster_test.go).
func startCluster(t *testing.T, n int) []*embedded.Server {
	t.Helper()
	return natstest.StartCluster(t, n, "sandtrail-emitter-test")
}

// streamLeader waits for the events stream to have a leader and two
// current replicas, and returns the leader's name.
func streamLeader(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var leader string
	err := poll(ctx, 50*time.Millisecond, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := js.Stream(c, bus.EventsStream)
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("cluster info %+v", info.Cluster)
		}
		if !slices.ContainsFunc(info.Cluster.Replicas, func(p *jetstream.PeerInfo) bool { return p.Current }) {
			return fmt.Errorf("no current replica: %+v", info.Cluster)
		}
		leader = info.Cluster.Leader
		return nil
	})
	if err != nil {
		t.Fatalf("stream leader: %v", err)
	}
	return leader
}
