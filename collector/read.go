package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// read gathers batches and hands them to the checker until soft ends.
//
// It reads through a pull iterator that keeps up to 2*MaxEvents messages
// coming while earlier batches are checked and written. Messages an
// iterator has buffered are not leased; when the reader has waited AckWait/4
// to hand a batch on (the writer holds one the sink refuses), it parks the
// iterator: it drains it into a leased backlog, which it serves first once
// the batches move again, so nothing waits unleased and the order is kept.
func (r *runner) read(soft context.Context, out chan<- gathered) {
	src := &source{r: r}
	defer src.close()
	attempt := 0
	for soft.Err() == nil {
		msgs, err := src.gather(soft)
		if err != nil {
			r.fail("nats", err)
			src.reset()
			d := backoff(attempt, r.cfg.RetryMin, r.cfg.RetryMax)
			attempt++
			r.log.Warn().Err(err).Dur("retry_in", d).Msg("reading the consumer failed")
			if !sleep(soft, d) || r.ensureConsumer(soft) == nil {
				return
			}
			continue
		}
		attempt = 0
		if len(msgs) == 0 {
			continue
		}
		g := gathered{msgs: msgs, lease: r.hold(msgs)}
		if !src.send(soft, out, g) {
			r.nakNow(msgs)
			r.drop(g.lease)
			return
		}
	}
}

// source is where the reader takes messages from: the backlog of a parked
// iterator first, then the iterator.
type source struct {
	r       *runner
	it      jetstream.MessagesContext
	backlog []jetstream.Msg
	lease   *lease // covers the backlog
}

// next returns the next message, or nil, nil when ctx ends first.
func (s *source) next(ctx context.Context) (jetstream.Msg, error) {
	if len(s.backlog) > 0 {
		m := s.backlog[0]
		s.backlog = s.backlog[1:]
		if len(s.backlog) == 0 {
			// The batch being gathered gets its own lease before the
			// writer sees it; the backlog's is no longer needed.
			s.dropLease()
		}
		return m, nil
	}
	if s.it == nil {
		it, err := s.r.cons.Load().Messages(jetstream.PullMaxMessages(2 * s.r.cfg.MaxEvents))
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		s.it = it
	}
	m, err := s.it.Next(jetstream.NextContext(ctx))
	switch {
	case err == nil:
		return m, nil
	case ctx.Err() != nil:
		return nil, nil
	}
	return nil, fmt.Errorf("pull: %w", err)
}

// gather reads one batch: it waits for a first message, then takes more
// until MaxEvents or until MaxWait has passed since the first.
func (s *source) gather(ctx context.Context) ([]jetstream.Msg, error) {
	first, err := s.next(ctx)
	if err != nil || first == nil {
		return nil, err
	}
	msgs := make([]jetstream.Msg, 1, s.r.cfg.MaxEvents)
	msgs[0] = first
	// One deadline for the batch, not a timer per message.
	bctx, cancel := context.WithTimeout(ctx, s.r.cfg.MaxWait)
	defer cancel()
	for len(msgs) < s.r.cfg.MaxEvents {
		m, err := s.next(bctx)
		if err != nil {
			// Deliver what was gathered; the error shows again next time.
			s.r.log.Debug().Err(err).Msg("pull interrupted")
			break
		}
		if m == nil {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// send hands a batch to the checker, parking the iterator if that takes
// longer than AckWait/4. It returns false when soft ended first.
func (s *source) send(soft context.Context, out chan<- gathered, g gathered) bool {
	t := time.NewTimer(s.r.cfg.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case out <- g:
			return true
		case <-t.C:
			s.park()
		case <-soft.Done():
			return false
		}
	}
}

// park stops the iterator and moves what it buffered to the leased backlog.
//
// Draining unsubscribes; a message the server was sending at that very
// moment is lost to this iterator and comes back after AckWait, out of
// order. The iterator has nothing outstanding when the writer holds up the
// reader (its buffer is full), so this needs a publish in the same instant.
func (s *source) park() {
	if s.it == nil {
		return
	}
	s.it.Drain()
	for {
		m, err := s.it.Next(jetstream.NextMaxWait(5 * time.Second))
		if err != nil {
			break
		}
		s.backlog = append(s.backlog, m)
	}
	s.it = nil
	if len(s.backlog) > 0 {
		s.dropLease()
		s.lease = s.r.hold(s.backlog)
	}
}

func (s *source) dropLease() {
	if s.lease != nil {
		s.r.drop(s.lease)
		s.lease = nil
	}
}

// reset forgets a broken iterator, keeping the backlog.
func (s *source) reset() {
	if s.it != nil {
		s.it.Stop()
		s.it = nil
	}
}

// close gives back what was read and not handed to the writer, in order,
// for immediate redelivery.
func (s *source) close() {
	s.park()
	s.r.nakNow(s.backlog)
	s.backlog = nil
	s.dropLease()
}
