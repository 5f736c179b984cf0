package emitter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/emitter/spool"
)

// Run publishes spooled events to JetStream until ctx ends or Close is
// called, then returns nil; it returns an error only when it cannot run
// (no Publisher, already running, closed). Events are published in spool
// order with Nats-Msg-Id = metadata.uid and acknowledged in the spool only
// after their PubAck; a failed or timed-out publish is retried, with
// backoff and jitter, from the first event not acknowledged, forever.
func (e *Emitter) Run(ctx context.Context) error {
	if e.cfg.Publisher == nil {
		return errors.New("emitter: Run: no Publisher configured")
	}
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return errors.New("emitter: Run: closed")
	case e.running:
		e.mu.Unlock()
		return errors.New("emitter: Run: already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{}) // per Run: Run may be called again after it returned
	e.running, e.cancel, e.stopped = true, cancel, stopped
	e.mu.Unlock()
	defer func() {
		cancel()
		e.mu.Lock()
		e.running = false
		close(stopped)
		e.mu.Unlock()
	}()
	for {
		recs, err := e.spool.Next(ctx, e.cfg.PublishBatch)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("emitter: read spool: %w", err)
		}
		if !e.publish(ctx, recs) {
			return nil // ctx ended; unacknowledged records stay in the spool
		}
	}
}

// publish publishes recs until all are acknowledged (true) or ctx ends.
func (e *Emitter) publish(ctx context.Context, recs []spool.Record) bool {
	attempt := 0
	for len(recs) > 0 {
		done, err := e.publishOnce(ctx, recs)
		if done > 0 {
			pos := make([]spool.Position, done)
			for i := range done {
				pos[i] = recs[i].Pos
			}
			if aerr := e.spool.Ack(pos...); aerr != nil {
				e.log.Warn().Err(aerr).Msg("acknowledge published events in the spool; they may be published again")
			}
			e.signalAcked()
			recs = recs[done:]
			attempt = 0
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		e.count(func(s *Stats) { s.Retries++ })
		wait := backoff(attempt, e.cfg.RetryMin, e.cfg.RetryMax)
		attempt++
		e.log.Warn().Err(err).Int("pending", len(recs)).Dur("retry_in", wait).Msg("publish to JetStream failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	return true
}

// connGetter is implemented by jetstream.JetStream.
type connGetter interface{ Conn() *nats.Conn }

// errNotConnected: the publish was not attempted because the connection
// is not established.
var errNotConnected = errors.New("emitter: not connected to NATS")

// publishOnce publishes recs asynchronously and waits for their acks in
// order. It returns how many leading records were acknowledged.
func (e *Emitter) publishOnce(ctx context.Context, recs []spool.Record) (int, error) {
	var nc *nats.Conn
	if c, ok := e.cfg.Publisher.(connGetter); ok {
		nc = c.Conn()
	}
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	var pubErr error
	for _, r := range recs {
		// While nats.go reconnects it buffers publishes and sends them
		// first on the new connection: those records would be stored
		// ahead of earlier ones lost with the old connection, which the
		// retry publishes only afterwards. Stop at the first sign of a
		// lost connection instead. (A disconnect between this check and
		// the publish can still let one record through.)
		if nc != nil {
			if st := nc.Status(); st != nats.CONNECTED {
				pubErr = fmt.Errorf("publish: connection %s: %w", st, errNotConnected)
				break
			}
		}
		subject, id, data, err := parseRecord(r.Data)
		if err != nil {
			// Only this process writes records; a malformed one cannot
			// be published ever. Say so loudly and skip it.
			e.log.Error().Str("position", r.Pos.String()).Msg("spool record is malformed; dropping it")
			futures = append(futures, nil)
			continue
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		f, err := e.cfg.Publisher.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(e.cfg.Stream))
		if err != nil {
			pubErr = fmt.Errorf("publish %s: %w", subject, err)
			break
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(e.cfg.AckTimeout)
	defer timer.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			e.count(func(s *Stats) {
				s.Published++
				if ack.Duplicate {
					s.Duplicate++
				}
			})
		case err := <-f.Err():
			return i, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-timer.C:
			return i, fmt.Errorf("publish %s: no acknowledgement within %v", f.Msg().Subject, e.cfg.AckTimeout)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	return len(futures), pubErr
}

func (e *Emitter) signalAcked() {
	e.mu.Lock()
	close(e.acked)
	e.acked = make(chan struct{})
	e.mu.Unlock()
}

// backoff returns the wait before retry attempt n: exponential from lo to
// hi, with full jitter in its upper half.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}
