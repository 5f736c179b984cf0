package collector

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
)

// runner feeds one sink from its consumer.
type runner struct {
	c   *Collector
	cfg SinkConfig
	log zerolog.Logger
	m   sinkMetrics

	cons     atomic.Pointer[consumer] // set by ensureConsumer
	exported atomic.Uint64
	dead     atomic.Uint64

	mu     sync.Mutex
	fails  map[string]failure // by source: "conn", "nats", "sink", "dlq"
	leases map[*lease]struct{}
	// lastReason remembers why an event was naked, for its dead letter
	// should it reach MaxDeliver; bounded by maxReasons.
	lastReason map[uint64]string
}

// consumer boxes the consumer handle for atomic.Pointer.
type consumer struct{ jetstream.Consumer }

type failure struct {
	since time.Time
	err   string
}

// item is one valid event of a batch and the message it came in.
type item struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	ev   Event
}

// lease is a set of messages the runner still works on: they get in-progress
// acknowledgements every AckWait/3 until dropped. Messages already
// acknowledged are skipped by the client.
type lease struct{ msgs []jetstream.Msg }

func (r *runner) run(soft, hard context.Context) {
	if r.ensureConsumer(soft) == nil {
		return
	}
	// Three stages, each on its own goroutine, handing batches on through
	// unbuffered channels: the reader gathers, the checker validates, the
	// writer writes. Each stage holds at most one batch.
	gathered := make(chan gathered)
	batches := make(chan []item)
	stopHK := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(gathered)
		r.read(soft, gathered)
	})
	wg.Go(func() {
		defer close(batches)
		r.checkAll(soft, hard, gathered, batches)
	})
	wg.Go(func() { r.housekeep(stopHK) })
	for b := range batches {
		r.deliver(soft, hard, b)
	}
	close(stopHK)
	wg.Wait()
}

// selects reports whether the sink's filter selects events published on
// subject.
func (r *runner) selects(subject string) bool {
	subjects, _ := r.cfg.Filter.Subjects() // checked by withDefaults
	return slices.ContainsFunc(subjects, func(f string) bool { return bus.Matches(f, subject) })
}

// exportedTo reports whether the sink's consumer has acknowledged every
// event it selects up to the stream sequence seq: each was exported (or
// dead-lettered).
func (r *runner) exportedTo(ctx context.Context, seq uint64) bool {
	c := r.cons.Load()
	if c == nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.AckFloor.Stream >= seq
}

// gathered is a batch read from the consumer, leased.
type gathered struct {
	msgs  []jetstream.Msg
	lease *lease
}

// checkAll validates what the reader gathered and hands it to the writer.
func (r *runner) checkAll(soft, hard context.Context, in <-chan gathered, out chan<- []item) {
	for g := range in {
		if soft.Err() != nil {
			r.nakNow(g.msgs)
			r.drop(g.lease)
			continue
		}
		items := r.prepare(soft, hard, g.msgs)
		if len(items) > 0 {
			select {
			case out <- items:
			case <-soft.Done():
				r.nakNow(g.msgs)
			}
		}
		r.drop(g.lease) // the writer holds its own lease from here
	}
}

// ensureConsumer creates or updates the sink's durable consumer, retrying
// until it succeeds or ctx ends (then it returns nil).
func (r *runner) ensureConsumer(ctx context.Context) jetstream.Consumer {
	cc := r.cfg.consumerConfig()
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := r.c.cfg.JetStream.CreateOrUpdateConsumer(cctx, r.c.cfg.Stream, cc)
		cancel()
		if err == nil {
			r.ok("nats")
			r.cons.Store(&consumer{cons})
			r.log.Debug().Str("consumer", cc.Durable).Strs("filter", cc.FilterSubjects).Msg("consumer ready")
			return cons
		}
		if ctx.Err() != nil {
			return nil
		}
		r.fail("nats", fmt.Errorf("create consumer %s on %s: %w", cc.Durable, r.c.cfg.Stream, err))
		d := backoff(attempt, r.cfg.RetryMin, r.cfg.RetryMax)
		r.log.Warn().Err(err).Str("consumer", cc.Durable).Dur("retry_in", d).Msg("cannot create the consumer")
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// prepare validates each message and reads its envelope, in parallel for
// large batches; what can never be delivered goes to the dead-letter
// stream here, in order.
func (r *runner) prepare(soft, hard context.Context, msgs []jetstream.Msg) []item {
	res := make([]checked, len(msgs))
	workers := min(runtime.GOMAXPROCS(0), maxCheckers, len(msgs)/minPerChecker)
	if workers > 1 {
		var wg sync.WaitGroup
		per := (len(msgs) + workers - 1) / workers
		for lo := 0; lo < len(msgs); lo += per {
			hi := min(lo+per, len(msgs))
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					r.check(msgs[i], &res[i])
				}
			})
		}
		wg.Wait()
	} else {
		for i, m := range msgs {
			r.check(m, &res[i])
		}
	}
	r.m.received.Add(float64(len(msgs)))
	items := make([]item, 0, len(msgs))
	validated := 0
	for i, m := range msgs {
		c := &res[i]
		switch {
		case c.md == nil:
			// Not a JetStream message: it cannot be acknowledged either.
			r.log.Error().Err(c.err).Str("subject", m.Subject()).Msg("message without JetStream metadata")
		case c.md.NumDelivered >= uint64(r.cfg.MaxDeliver):
			r.deadLetter(soft, hard, m, c.md, &deadLetter{reason: reasonMaxDeliveries, message: r.maxDeliveriesMessage(c.md)})
		case c.err != nil:
			d := &deadLetter{reason: reasonSyntax, message: c.err.Error()}
			if c.invalid {
				d.reason, d.code, d.where = invalid(c.err, m.Data(), r.limit())
			}
			r.deadLetter(soft, hard, m, c.md, d)
		default:
			validated++
			items = append(items, item{msg: m, meta: c.md, ev: c.ev})
		}
	}
	r.m.validated.Add(float64(validated))
	if n := len(res); n > 0 && res[n-1].md != nil {
		r.m.pending.Set(float64(res[n-1].md.NumPending))
	}
	return items
}

// Parallel checking: at most maxCheckers goroutines, each with at least
// minPerChecker messages.
const (
	maxCheckers   = 4
	minPerChecker = 32
)

// checked is what check found about one message.
type checked struct {
	md      *jetstream.MsgMetadata
	ev      Event
	err     error
	invalid bool // err is the validator's
}

// check reads a message's metadata, validates it and reads its envelope.
// It touches nothing but c: it runs on several goroutines at once.
func (r *runner) check(m jetstream.Msg, c *checked) {
	md, err := m.Metadata()
	if err != nil {
		c.err = err
		return
	}
	c.md = md
	if md.NumDelivered >= uint64(r.cfg.MaxDeliver) {
		return
	}
	data := m.Data()
	if err := r.c.cfg.Validator.Validate(data); err != nil {
		c.err, c.invalid = err, true
		return
	}
	ev, err := readEnvelope(data)
	if err != nil {
		c.err = err
		return
	}
	ev.Subject = m.Subject()
	c.ev = ev
}

// limit is the validator's size limit.
func (r *runner) limit() int {
	if n := r.c.cfg.Validator.MaxEventBytes; n > 0 {
		return n
	}
	return 1 << 20 // schema.Validator's default
}

func (r *runner) maxDeliveriesMessage(md *jetstream.MsgMetadata) string {
	msg := fmt.Sprintf("delivered %d times, the limit for sink %s", md.NumDelivered, r.cfg.Name)
	r.mu.Lock()
	last, ok := r.lastReason[md.Sequence.Stream]
	r.mu.Unlock()
	if ok {
		msg += "; last failure: " + last
	}
	return msg
}

// deliver writes one batch and settles every event of it.
func (r *runner) deliver(soft, hard context.Context, items []item) {
	msgs := make([]jetstream.Msg, len(items))
	for i, it := range items {
		msgs[i] = it.msg
	}
	l := r.hold(msgs)
	defer r.drop(l)
	evs := make([]Event, len(items))
	for attempt := 0; ; attempt++ {
		evs = evs[:len(items)]
		for i, it := range items {
			evs[i] = it.ev
		}
		start := time.Now()
		outs := r.cfg.Sink.Write(hard, evs)
		r.m.latency.Observe(time.Since(start).Seconds())
		r.m.batchSize.Observe(float64(len(evs)))
		if len(outs) != len(evs) {
			r.log.Error().Int("events", len(evs)).Int("outcomes", len(outs)).Msg("sink broke its contract: one outcome per event")
			outs = RetryAll(len(evs), fmt.Sprintf("sink returned %d outcomes for %d events", len(outs), len(evs)), 0)
		}
		var retry []item
		var retryOuts []Outcome
		progressed := false
		delivered := 0
		for i, o := range outs {
			it := items[i]
			switch o.Status {
			case Delivered:
				progressed = true
				delivered++
				r.settle(it.msg, it.msg.Ack())
			case Reject:
				progressed = true
				r.deadLetter(soft, hard, it.msg, it.meta, &deadLetter{reason: reasonRejected, message: o.Reason, origUID: it.ev.UID})
			case Defer:
				// Taken later by design: back to the server, no failure.
				progressed = true
				r.m.deferred.Inc()
				r.nakLater(it, o)
			default:
				retry = append(retry, it)
				retryOuts = append(retryOuts, o)
			}
		}
		r.exported.Add(uint64(delivered))
		r.m.exported.Add(float64(delivered))
		if len(retry) == 0 {
			r.ok("sink")
			return
		}
		r.m.retried.Add(float64(len(retry)))
		if progressed {
			// The receiver works and took the rest: let the server bring
			// these back later.
			r.ok("sink")
			for i, it := range retry {
				r.nakLater(it, retryOuts[i])
			}
			return
		}
		r.fail("sink", errors.New(retryOuts[0].Reason))
		if attempt+1 >= holdAttempts && redelivered(retry) {
			// Already out of order, and perhaps what the receiver
			// refuses rather than a receiver that is down: let the
			// server bring them back later, and the next (fresh) batch
			// tell which it is.
			for i, it := range retry {
				r.nakLater(it, retryOuts[i])
			}
			return
		}
		wait := backoff(attempt, r.cfg.RetryMin, r.cfg.RetryMax)
		for _, o := range retryOuts {
			wait = max(wait, o.RetryAfter)
		}
		if soft.Err() != nil {
			r.nakAll(retry)
			return
		}
		r.log.Warn().Str("reason", retryOuts[0].Reason).Int("events", len(retry)).Dur("retry_in", wait).Msg("sink refused the batch; holding it")
		if !sleep(soft, wait) {
			r.nakAll(retry)
			return
		}
		items = retry
	}
}

// holdAttempts is how many times a batch of redelivered events is written
// before it is given back to the server instead of held.
const holdAttempts = 3

// redelivered reports whether every event was delivered before: naked
// after a partial failure, or in flight when a collector stopped.
func redelivered(items []item) bool {
	for _, it := range items {
		if it.meta.NumDelivered <= 1 {
			return false
		}
	}
	return true
}

// nakLater asks the server to redeliver an event after a backoff by its
// delivery count, and at least its Retry-After.
func (r *runner) nakLater(it item, o Outcome) {
	delay := max(backoff(int(it.meta.NumDelivered)-1, r.cfg.RetryMin, r.cfg.RetryMax), o.RetryAfter)
	r.mu.Lock()
	if r.lastReason == nil || len(r.lastReason) >= maxReasons {
		r.lastReason = map[uint64]string{}
	}
	r.lastReason[it.meta.Sequence.Stream] = o.Reason
	r.mu.Unlock()
	r.settle(it.msg, it.msg.NakWithDelay(delay))
}

const maxReasons = 1 << 14

// nakAll and nakNow give messages back for immediate redelivery, in order:
// on shutdown, so that another collector takes them at once.
func (r *runner) nakAll(items []item) {
	for _, it := range items {
		r.settle(it.msg, it.msg.Nak())
	}
}

func (r *runner) nakNow(msgs []jetstream.Msg) {
	for _, m := range msgs {
		err := m.Nak()
		if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			continue
		}
		r.settle(m, err)
	}
}

// settle counts an acknowledgement that could not be sent: the server
// will redeliver the message, which at-least-once allows.
func (r *runner) settle(m jetstream.Msg, err error) {
	if err != nil {
		r.m.ackErrors.Inc()
		r.log.Debug().Err(err).Str("subject", m.Subject()).Msg("acknowledgement not sent")
	}
}

// deadLetter publishes the message's dead letter and then terminates the
// message. A failed publish is retried with backoff until soft ends; then
// the message is naked, to be dead-lettered on its next delivery.
func (r *runner) deadLetter(soft, hard context.Context, m jetstream.Msg, md *jetstream.MsgMetadata, d *deadLetter) {
	d.data, d.subject = m.Data(), m.Subject()
	d.stream, d.seq, d.delivered, d.stored = md.Stream, md.Sequence.Stream, md.NumDelivered, md.Timestamp
	why := d.reason
	if why.perSink() {
		d.sink = r.cfg.Name
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(hard, 10*time.Second)
		err := r.c.dlqTrail.deadLetter(ctx, d)
		cancel()
		if err == nil {
			break
		}
		r.fail("dlq", err)
		wait := backoff(attempt, r.cfg.RetryMin, r.cfg.RetryMax)
		r.log.Error().Err(err).Uint64("stream_seq", d.seq).Str("reason", string(why)).Dur("retry_in", wait).Msg("cannot publish a dead letter")
		if !sleep(soft, wait) {
			r.settle(m, m.Nak())
			return
		}
	}
	r.ok("dlq")
	r.dead.Add(1)
	r.m.dead(why)
	r.settle(m, m.TermWithReason(string(why)))
	r.mu.Lock()
	delete(r.lastReason, d.seq)
	r.mu.Unlock()
	r.log.Warn().Str("reason", string(why)).Uint64("stream_seq", d.seq).Str("subject", d.subject).
		Str("message", clip(d.message, 512)).Msg("dead-lettered")
}

// backoff is lo doubled n times, capped at hi.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	return min(max(d, lo), hi)
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
