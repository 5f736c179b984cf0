// Package emitter turns typed OCSF events into durable, published facts.
//
// Emit stamps the envelope (EVENTS.md: uid, time, per-run sequence,
// correlation_uid, product, device, profiles, extensions, log_name),
// encodes and validates each event, and appends the batch to the local
// spool with one fsync before it returns: an event Emit accepted survives a
// crash of this process at any instant. An invalid event is never spooled;
// Emit returns the validation error and spools nothing of the batch.
//
// A separate, owned publisher (Run) drains the spool to JetStream in order,
// publishing each event with Nats-Msg-Id = metadata.uid, and removes it from
// the spool only after its PubAck. When the bus is down, Emit keeps working
// (it never waits for the bus) and Run retries with backoff until the
// server is back. Records left by a process that died are published by the
// next process that opens the same spool directory.
//
// Guarantees: at-least-once delivery to the stream; duplicates within the
// stream's duplicate window (default 2 minutes) are dropped by JetStream;
// beyond it (a spool replayed after a long outage) metadata.uid lets every
// consumer drop them.
package emitter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

// Publisher is the part of jetstream.JetStream the emitter uses.
// Implementations must be safe for concurrent use; the futures they return
// must eventually resolve or time out.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

var _ Publisher = (jetstream.JetStream)(nil)

// Config configures an Emitter. The zero value of each field means the
// default in its comment; Spool.Dir is required.
type Config struct {
	// Spool configures the durable local spool (directory, size bound,
	// full policy). Its Logger is replaced by Logger.
	Spool spool.Config
	// Publisher publishes to JetStream. Nil: Emit still spools, and Run
	// must not be called (a process that only records, such as a sandbox
	// launch whose bus is not configured).
	//
	// If it has a Conn() *nats.Conn method, as jetstream.JetStream does,
	// Run publishes only while that connection is CONNECTED: what nats.go
	// buffers while reconnecting is sent on the new connection ahead of
	// the retry of events lost with the old one, out of order. Create a
	// jetstream.JetStream with jetstream.WithPublishAsyncTimeout (at most
	// AckTimeout): without it, a publish the server never answers (a
	// stream leader lost in a cluster) stays pending in the client until
	// the connection drops, and enough of them (its max pending, 4000 by
	// default) stall every later publish.
	Publisher Publisher
	// Stream is the events stream each publish must land in. Default
	// bus.EventsStream.
	Stream string
	// Host fills metadata-independent device data; default: no device
	// (callers normally pass DetectHost()).
	Host Host
	// Signer signs each run's last event (Trail.End). Default: none; the
	// trails are still chained and counted, only not signed.
	Signer *chain.Signer
	// ProductVersion is metadata.product.version. Default "devel".
	ProductVersion string
	// Validator checks every event before it is spooled. Default: the
	// zero schema.Validator (1 MiB per event).
	Validator *schema.Validator
	// PublishBatch bounds the events in flight. Default 256.
	PublishBatch int
	// AckTimeout is how long a PubAck may take before the publish is
	// retried. Default 5s.
	AckTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between publish retries.
	// Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// Now is the clock for event times and uids. Default time.Now.
	Now func() time.Time
	// Logger receives publish failures and recovery reports.
	Logger zerolog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Spool.Dir == "" {
		return c, errors.New("emitter: Spool.Dir is required")
	}
	if c.Stream == "" {
		c.Stream = bus.EventsStream
	}
	if c.ProductVersion == "" {
		c.ProductVersion = "devel"
	}
	if c.Validator == nil {
		c.Validator = &schema.Validator{}
	}
	if c.PublishBatch <= 0 {
		c.PublishBatch = 256
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = 5 * time.Second
		if c.RetryMax < c.RetryMin {
			c.RetryMax = c.RetryMin
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Spool.Logger = c.Logger // one logger for the emitter and its spool
	return c, nil
}

// Emitter stamps, validates, spools and publishes events. Create it with
// New; Emit is safe for concurrent use.
type Emitter struct {
	cfg      Config
	spool    *spool.Spool
	log      zerolog.Logger
	recovery spool.Recovery

	mu      sync.Mutex
	acked   chan struct{} // closed and replaced after every acknowledged batch
	stats   Stats
	running bool
	stopped chan struct{} // made by each Run, closed when it returns
	cancel  context.CancelFunc
	closed  bool
}

// Stats counts what the emitter did since New.
type Stats struct {
	Emitted   uint64 // events spooled by Emit
	Rejected  uint64 // events Emit refused (invalid, or the spool refused the batch)
	Published uint64 // events acknowledged by the stream (including duplicates the stream dropped)
	Duplicate uint64 // of those, acknowledged as duplicates
	Retries   uint64 // publish attempts that failed and were retried
}

// New opens the spool. It starts no goroutine: call Run to publish.
func New(cfg Config) (*Emitter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sp, rec, err := spool.Open(cfg.Spool)
	if err != nil {
		return nil, fmt.Errorf("emitter: %w", err)
	}
	return &Emitter{
		cfg:      cfg,
		spool:    sp,
		log:      cfg.Logger,
		recovery: rec,
		acked:    make(chan struct{}),
	}, nil
}

// Recovery reports what opening the spool found: segments of processes
// that are gone (to be published by this one) and damaged records.
func (e *Emitter) Recovery() spool.Recovery { return e.recovery }

// Stats returns a snapshot of the counters.
func (e *Emitter) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Pending returns the number of spooled events not yet acknowledged by the
// stream (this process's and those it claimed).
func (e *Emitter) Pending() int { return e.spool.Stats().Pending }

// Flush waits until every event spooled so far has been acknowledged by
// the stream, or ctx ends. Without a running publisher it returns at once
// with an error when events are pending.
func (e *Emitter) Flush(ctx context.Context) error {
	for {
		e.mu.Lock()
		ch, running := e.acked, e.running
		e.mu.Unlock()
		n := e.spool.Stats().Pending
		if n == 0 {
			return nil
		}
		if !running {
			return fmt.Errorf("emitter: flush: %d events pending and no publisher running", n)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("emitter: flush: %d events still pending: %w", e.spool.Stats().Pending, ctx.Err())
		}
	}
}

// Close flushes (until ctx ends), stops the publisher and closes the spool.
// Events not yet published stay in the spool for the next process; the
// error then says how many.
func (e *Emitter) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	running := e.running
	e.mu.Unlock()
	var errs []error
	if running {
		if err := e.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
		e.mu.Lock()
		cancel, stopped := e.cancel, e.stopped
		e.mu.Unlock()
		cancel()
		<-stopped
	}
	pending := e.spool.Stats().Pending
	if err := e.spool.Close(); err != nil {
		errs = append(errs, fmt.Errorf("emitter: close spool: %w", err))
	}
	if pending > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("emitter: %d events left in the spool for the next process", pending))
	}
	return errors.Join(errs...)
}
