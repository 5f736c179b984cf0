package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/schema"
)

// Collector exports the events stream to its sinks.
//
// Each sink has its own durable pull consumer, sandtrail-<name>, filtered on
// the server as its Filter says, so sinks advance independently and one
// that fails holds up no other. Per sink, three goroutines pass batches
// along (each holds at most one): a reader gathers up to MaxEvents messages
// (waiting at most MaxWait after the first) from a pull iterator that keeps
// 2*MaxEvents coming; a checker validates each message as untrusted bytes
// (in parallel for large batches) and reads its envelope; a writer hands
// the batch to the sink and settles every event:
//
//   - Delivered: acknowledged, and only then.
//   - Every event of the batch Retry (the receiver is down): the writer
//     keeps the batch and writes it again after a backoff (RetryMin
//     doubling to RetryMax, and at least the longest Retry-After), and
//     nothing behind it moves: events of a run stay in order, and an outage
//     uses up no deliveries. In-progress acknowledgements every AckWait/3
//     keep the server from redelivering anything the collector holds (the
//     reader drains its iterator into a leased backlog when it has waited
//     AckWait/4). A batch made only of redelivered events (already out of
//     order) is held for three attempts, then naked like the next case, so
//     that one event the receiver keeps refusing cannot stall the sink.
//   - Some events Retry, others not (the receiver took the rest): those are
//     negatively acknowledged with a delay (the backoff by delivery count,
//     and at least their Retry-After); the server redelivers them later,
//     behind events that came after them.
//   - Reject, a message that fails validation (garbage, truncated JSON, a
//     schema violation, a class sandtrail does not know, over the size
//     limit), or one arriving for the MaxDeliver-th time: published to the
//     dead-letter stream as an Application Error (6008, Translation Error)
//     with the original bytes in raw_data (at most RawDataMax of them, with
//     raw_data_size and raw_data_hash of the whole), the validator's or the
//     sink's message in message, the reason in metadata.event_code
//     (DLQ_SYNTAX, DLQ_SCHEMA, DLQ_SEMANTIC, DLQ_UNKNOWN_CLASS, DLQ_TOO_LARGE,
//     DLQ_REJECTED, DLQ_MAX_DELIVERIES) and the subject sandtrail.dlq.<reason>;
//     then terminated. Its Nats-Msg-Id, dlq-<reason>[-<sink>]-<stream>-<seq>,
//     and its metadata.uid (a UUIDv7 derived from it) make redeliveries and
//     several sinks seeing one invalid message give one dead letter. A dead
//     letter that cannot be published is retried; nothing is dropped
//     without a record.
//
// The guarantee is at least once: an acknowledgement lost with a crash
// makes the sink see the event again, with the same metadata.uid. Order
// within a run holds while one collector runs and the receiver fails whole
// batches; it does not hold across a crash or restart (unacknowledged
// events come back after AckWait, or at once when the collector stopped
// cleanly) nor for events a receiver refused one by one.
type Collector struct {
	cfg      Config
	log      zerolog.Logger
	m        *metrics
	sinks    []*runner
	trail    *trail // the collector's lifecycle, on the events stream
	dlqTrail *trail // its dead letters, a run of their own on the dead-letter stream

	unregister func()

	mu      sync.Mutex
	started bool
	closed  bool
	stop    context.CancelFunc // ends fetching
	kill    context.CancelFunc // ends writes in progress
	done    chan struct{}      // closed when Run returns
}

// New validates cfg and registers the metrics. It starts nothing and
// touches no network: Run does.
func New(cfg Config) (*Collector, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.RunID == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("collector: run id: %w", err)
		}
		cfg.RunID = "collector-" + u.String()
	}
	c := &Collector{cfg: cfg, log: cfg.Logger.With().Str("component", "collector").Logger(), m: newMetrics()}
	if c.trail, err = newTrail(&c.cfg, c.cfg.RunID); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	if c.dlqTrail, err = newTrail(&c.cfg, c.cfg.RunID+"/dlq"); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	for _, s := range cfg.Sinks {
		c.sinks = append(c.sinks, &runner{
			c:   c,
			cfg: s,
			log: c.log.With().Str("sink", s.Name).Logger(),
		})
	}
	if err := c.register(); err != nil {
		return nil, err
	}
	return c, nil
}

// Run creates or updates each sink's consumer and exports until ctx ends
// or Close is called. It records the collector's start and stop as
// Application Lifecycle events (COLLECTOR_STARTED, COLLECTOR_STOPPED) in
// the events stream, a trail of their own.
//
// Stopping: Run publishes COLLECTOR_STOPPED while the sinks still run, and
// lets every sink whose filter selects it export up to it, so that an
// export holds the collector's whole trail (verify finds it final). Then
// it stops fetching, lets the batches being written finish, negatively
// acknowledges what was fetched and not written so that it is redelivered
// at once, and returns once every goroutine it started has returned. The
// drain and the batches share DrainTimeout (or Close's deadline); a sink
// that cannot export in time gets the stop event on the next run.
//
// Run retries what fails (NATS unreachable, a stream missing, a sink
// down) until it is stopped; Health reports what has been failing for too
// long. It returns an error only when called twice or after Close.
func (c *Collector) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.started {
		c.mu.Unlock()
		return errors.New("collector: Run called twice")
	}
	c.started = true
	// stopping ends with ctx or Close; fetching ends when Run says, after
	// the drain; hard ends the writes in progress.
	stopping, stop := context.WithCancel(ctx)
	fetching, endFetch := context.WithCancel(context.WithoutCancel(ctx))
	hard, kill := context.WithCancel(context.WithoutCancel(ctx))
	c.stop, c.kill, c.done = stop, kill, make(chan struct{})
	c.mu.Unlock()
	defer close(c.done)
	defer kill()
	defer endFetch()
	defer stop()

	sctx, cancel := context.WithTimeout(hard, 5*time.Second)
	c.lifecycle(sctx, schema.ApplicationLifecycleActivityIDStart, "COLLECTOR_STARTED", "sandtrail collector started: "+c.describe())
	cancel()
	loopsDone := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range c.sinks {
		wg.Go(func() { r.run(fetching, hard) })
	}
	go func() { wg.Wait(); close(loopsDone) }()

	select {
	case <-loopsDone:
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		c.lifecycle(lctx, schema.ApplicationLifecycleActivityIDStop, "COLLECTOR_STOPPED", "sandtrail collector stopped: "+c.totals())
		return nil
	case <-stopping.Done():
	}
	deadline := time.Now().Add(c.cfg.DrainTimeout)
	dctx, cancel := context.WithDeadline(hard, deadline)
	defer cancel()
	// Not bounded by hard: a collector whose Close deadline passed still
	// records its stop (within 5 s), as it always did.
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	subject, seq, ok := c.lifecycle(lctx, schema.ApplicationLifecycleActivityIDStop, "COLLECTOR_STOPPED",
		"sandtrail collector stopping; until now: "+c.totals())
	lcancel()
	if ok {
		c.drain(dctx, subject, seq)
	}
	endFetch()
	// The batches being written may finish: until the deadline, and at
	// least a second after a drain that used it up.
	t := time.NewTimer(max(time.Until(deadline), time.Second))
	defer t.Stop()
	select {
	case <-loopsDone:
	case <-t.C:
		kill()
		<-loopsDone
	}
	return nil
}

// drain waits, until ctx ends, for every sink whose filter selects subject
// to have acknowledged every event up to the stream sequence seq.
func (c *Collector) drain(ctx context.Context, subject string, seq uint64) {
	var waiting []*runner
	for _, r := range c.sinks {
		if r.selects(subject) {
			waiting = append(waiting, r)
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting = slices.DeleteFunc(waiting, func(r *runner) bool { return r.exportedTo(ctx, seq) })
		if len(waiting) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for _, r := range waiting {
				r.log.Warn().Uint64("stream_seq", seq).Msg("stopping before the sink exported the collector's stop event; it gets it on the next run")
			}
			return
		case <-tick.C:
		}
	}
}

// Close stops Run if it is running and waits for it: batches being written
// may finish until ctx ends, then their writes are cancelled. It then
// closes every sink with ctx and unregisters the metrics. Close is
// idempotent; Run after Close returns ErrClosed.
func (c *Collector) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	stop, kill, done := c.stop, c.kill, c.done
	c.mu.Unlock()
	if done != nil {
		stop()
		select {
		case <-done:
		case <-ctx.Done():
			kill()
			<-done
		}
	}
	var errs []error
	for _, r := range c.sinks {
		if err := r.cfg.Sink.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("collector: close sink %s: %w", r.cfg.Name, err))
		}
	}
	c.unregister()
	return errors.Join(errs...)
}

// lifecycle publishes a lifecycle event and returns its subject and stream
// sequence; ok is false (logged and counted) when it could not.
func (c *Collector) lifecycle(ctx context.Context, activity schema.ApplicationLifecycleActivityID, code, msg string) (subject string, seq uint64, ok bool) {
	subject, seq, err := c.trail.lifecycle(ctx, activity, code, msg)
	if err != nil {
		c.m.lifecycle.Inc()
		c.log.Error().Err(err).Str("event_code", code).Msg("publish the collector's lifecycle event")
		return "", 0, false
	}
	return subject, seq, true
}

func (c *Collector) describe() string {
	parts := make([]string, len(c.sinks))
	for i, r := range c.sinks {
		kind := r.cfg.Type
		if kind == "" {
			kind = fmt.Sprintf("%T", r.cfg.Sink)
		}
		parts[i] = fmt.Sprintf("%s (%s, %s)", r.cfg.Name, kind, r.cfg.Filter)
	}
	return "sinks " + strings.Join(parts, ", ")
}

func (c *Collector) totals() string {
	parts := make([]string, len(c.sinks))
	for i, r := range c.sinks {
		parts[i] = fmt.Sprintf("%s exported %d, dead-lettered %d", r.cfg.Name, r.exported.Load(), r.dead.Load())
	}
	return strings.Join(parts, "; ")
}

// SinkStates returns the health of every sink, in configuration order.
func (c *Collector) SinkStates() []SinkState {
	now := c.cfg.Now()
	out := make([]SinkState, len(c.sinks))
	for i, r := range c.sinks {
		out[i] = r.state(now)
	}
	return out
}

// Health returns nil, or an error naming every sink that has been failing
// for longer than MaxFailing.
func (c *Collector) Health() error {
	var bad []string
	for _, s := range c.SinkStates() {
		if !s.FailingSince.IsZero() && s.For > c.cfg.MaxFailing {
			bad = append(bad, s.String())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("collector: %s", strings.Join(bad, "; "))
}

// RunID returns the correlation_uid of the collector's own events.
func (c *Collector) RunID() string { return c.cfg.RunID }
