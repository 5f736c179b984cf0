package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sandtrail/sandtrail/collector"
)

var (
	_ collector.Sink         = (*Sink)(nil)
	_ collector.Instrumented = (*Sink)(nil)
)

// ErrClosed is the reason of every outcome of a Write after Close.
var ErrClosed = errors.New("syslog: sink closed")

// Sink sends events to one syslog receiver over one connection, opened on
// the first Write and reopened after any failure. Write is called by one
// goroutine at a time (the collector's contract); Close may be called
// concurrently with a Write and is idempotent.
type Sink struct {
	cfg  Config // with defaults
	fmt  formatter
	tls  *tls.Config // nil for transport "tcp"
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	now  func() time.Time

	// writing is the write lock (a one-slot channel, so that Close can stop
	// waiting for it when its context ends). It guards the fields below.
	writing  chan struct{}
	buf      []byte
	backoff  time.Duration // the next pause after a failure
	nextDial time.Time     // no connection attempt before then
	lastErr  error         // the failure that set nextDial

	closed  atomic.Bool
	mu      sync.Mutex // guards conn, so that Close can abort a Write stuck on it
	conn    net.Conn
	connect atomic.Uint64 // connections opened
	failed  atomic.Uint64 // batches that failed on an open connection and are resent
}

// Stats counts what the sink did since New.
type Stats struct {
	Connects uint64 // connections opened (the first, then one per reconnect)
	Resent   uint64 // batches whose connection failed while sending them: every event was marked Retry
}

// New validates cfg, reads its certificate files and returns a Sink. It
// starts nothing: the connection is opened by the first Write.
func New(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	facility, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("syslog: config: %w", err)
	}
	s := &Sink{
		cfg: cfg,
		fmt: formatter{facility: facility, hostname: cfg.Hostname, appName: cfg.AppName,
			sdID: "sandtrail@" + strconv.Itoa(cfg.EnterpriseNumber)},
		dial:    (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		now:     time.Now,
		writing: make(chan struct{}, 1),
		backoff: cfg.Backoff,
	}
	if cfg.Transport == TransportTLS {
		if s.tls, err = cfg.tlsConfig(); err != nil {
			return nil, fmt.Errorf("syslog: config: %w", err)
		}
	}
	return s, nil
}

// Stats returns the sink's counters; safe to call at any time.
func (s *Sink) Stats() Stats {
	return Stats{Connects: s.connect.Load(), Resent: s.failed.Load()}
}

// Collectors implements collector.Instrumented: the Stats as counters.
func (s *Sink) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandtrail_sink_syslog_connections_total",
			Help: "Connections opened to the syslog receiver (the first, then one per reconnect).",
		}, func() float64 { return float64(s.connect.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandtrail_sink_syslog_batches_resent_total",
			Help: "Batches whose connection failed while they were sent; every event was marked Retry and resent.",
		}, func() float64 { return float64(s.failed.Load()) }),
	}
}

// Write sends the batch as one write of octet-counted frames and returns
// one outcome per event: Reject for an event whose message exceeds
// MaxMessageSize, and for the others Delivered once the kernel accepted the
// whole batch, or Retry (whole batch) on any failure or when ctx ends. See
// the package documentation for what Delivered can and cannot promise.
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	select {
	case s.writing <- struct{}{}:
		defer func() { <-s.writing }()
	case <-ctx.Done():
		return collector.RetryAll(len(batch), "syslog: "+ctx.Err().Error(), 0)
	}
	if s.closed.Load() {
		return collector.RetryAll(len(batch), ErrClosed.Error(), 0)
	}
	if err := ctx.Err(); err != nil { // do not start a batch that cannot finish
		return collector.RetryAll(len(batch), "syslog: "+err.Error(), 0)
	}
	out := make([]collector.Outcome, len(batch))
	buf := s.buf[:0]
	pending := 0
	for i := range batch {
		var err error
		if buf, err = s.fmt.appendFrame(buf, &batch[i], s.cfg.MaxMessageSize); err != nil {
			out[i] = collector.Outcome{Status: collector.Reject, Reason: err.Error()}
			continue
		}
		pending++
	}
	if cap(buf) <= 4<<20 { // keep a buffer of ordinary size for the next batch
		s.buf = buf
	}
	if pending == 0 {
		return out
	}
	retry := func(reason string, after time.Duration) []collector.Outcome {
		for i := range out {
			if out[i].Status != collector.Reject {
				out[i] = collector.Outcome{Status: collector.Retry, Reason: reason, RetryAfter: after}
			}
		}
		return out
	}
	conn, after, err := s.connection(ctx)
	if err != nil {
		return retry(err.Error(), after)
	}
	if err := s.send(ctx, conn, buf); err != nil {
		s.failed.Add(1)
		s.drop(conn)
		if ctx.Err() == nil {
			s.fail(err)
		}
		return retry(fmt.Sprintf("syslog: send to %s: %v; the batch is resent on a new connection", s.cfg.Address, err), 0)
	}
	s.backoff = s.cfg.Backoff
	return out
}

// send writes buf to conn within WriteTimeout, giving up when ctx ends.
func (s *Sink) send(ctx context.Context, conn net.Conn, buf []byte) error {
	deadline := s.now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := conn.Write(buf)
	if !stop() && err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// connection returns the open connection if the receiver has not closed
// it, or opens a new one unless a backoff is running.
func (s *Sink) connection(ctx context.Context) (net.Conn, time.Duration, error) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		if err := stillOpen(conn); err == nil {
			return conn, 0, nil
		}
		s.drop(conn) // closed by the receiver: reconnect, without waiting for a backoff
	}
	if wait := s.nextDial.Sub(s.now()); wait > 0 {
		return nil, wait, fmt.Errorf("syslog: reconnect to %s in %v after: %v", s.cfg.Address, wait.Round(time.Millisecond), s.lastErr)
	}
	conn, err := s.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("syslog: connect to %s: %w", s.cfg.Address, ctx.Err())
		}
		s.fail(err)
		return nil, s.nextDial.Sub(s.now()), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() { // Close ran while we were dialling
		conn.Close()
		return nil, 0, ErrClosed
	}
	s.conn = conn
	s.connect.Add(1)
	return conn, 0, nil
}

// open dials, completes the TLS handshake and waits AcceptWait for the
// receiver to refuse the connection.
func (s *Sink) open(ctx context.Context) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	conn, err := s.dial(dctx, "tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("syslog: %w", err)
	}
	if s.tls != nil {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("syslog: TLS handshake with %s: %w", s.cfg.Address, err)
		}
		conn = tc
	}
	if s.cfg.AcceptWait > 0 {
		wait := s.cfg.AcceptWait
		if d, ok := dctx.Deadline(); ok && time.Until(d) < wait {
			wait = max(time.Until(d), time.Millisecond)
		}
		if err := alive(conn, wait); err != nil {
			conn.Close()
			return nil, fmt.Errorf("syslog: %s closed the connection after the handshake (client certificate refused?): %w", s.cfg.Address, err)
		}
	}
	return conn, nil
}

// stillOpen reports, without waiting, whether the receiver has not closed
// conn: a peek at the socket. Only when bytes wait to be read (TLS records
// that carry no data, or the alert before a close) does it read them, with
// alive, and look again. A short read deadline alone is not enough: on a
// busy machine the deadline can pass before the read looks at the socket,
// and a closed connection would pass for an open one.
func stillOpen(conn net.Conn) error {
	for range 3 {
		closed, data, ok := peek(conn)
		switch {
		case !ok:
			return alive(conn, time.Millisecond)
		case closed:
			return io.ErrUnexpectedEOF
		case !data:
			return nil
		}
		if err := alive(conn, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// alive reads from conn for up to wait: a syslog receiver never sends
// anything, so a timeout means the connection is open, and EOF or an error
// (a TLS alert) that the receiver closed it. TLS records that carry no
// data (session tickets) are consumed by the read.
func alive(conn net.Conn, wait time.Duration) error {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	var b [512]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = nil
	} else if err == nil {
		err = errors.New("the receiver sent data; syslog receivers never do")
	}
	if derr := conn.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// fail records a failure: no new connection before the backoff passed.
func (s *Sink) fail(err error) {
	s.lastErr = err
	s.nextDial = s.now().Add(s.backoff)
	s.backoff = min(s.backoff*2, s.cfg.BackoffMax)
}

// drop closes conn and forgets it if it is the current connection.
func (s *Sink) drop(conn net.Conn) {
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.mu.Unlock()
	conn.Close()
}

// Close closes the connection. Everything Write reported Delivered was
// already handed to the kernel, so there is nothing to flush. A Write in
// progress is waited for until ctx ends; then its connection is closed
// under it (it returns Retry). Close is idempotent; Write after Close marks
// every event Retry.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	select {
	case s.writing <- struct{}{}:
		defer func() { <-s.writing }()
	case <-ctx.Done():
		err = fmt.Errorf("syslog: close: a write was in progress: %w", ctx.Err())
	}
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	if conn != nil {
		if cerr := conn.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("syslog: close: %w", cerr)
		}
	}
	return err
}
