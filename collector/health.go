package collector

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// housekeep keeps held messages alive and reads the consumer's lag until
// stop is closed.
func (r *runner) housekeep(stop <-chan struct{}) {
	progress := time.NewTicker(r.cfg.AckWait / 3)
	defer progress.Stop()
	lag := time.NewTicker(r.c.cfg.LagInterval)
	defer lag.Stop()
	for {
		select {
		case <-stop:
			return
		case <-progress.C:
			r.progress()
		case <-lag.C:
			r.readLag(stop)
			if nc := r.c.cfg.JetStream.Conn(); nc != nil && nc.Status() != nats.CONNECTED {
				r.fail("conn", fmt.Errorf("nats connection %s", strings.ToLower(nc.Status().String())))
			} else {
				r.ok("conn")
			}
		}
	}
}

func (r *runner) readLag(stop <-chan struct{}) {
	cons := r.cons.Load()
	if cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		r.log.Debug().Err(err).Msg("read consumer info")
		return
	}
	r.m.pending.Set(float64(info.NumPending))
	r.m.ackPending.Set(float64(info.NumAckPending))
}

// hold leases msgs: they get in-progress acknowledgements until dropped.
func (r *runner) hold(msgs []jetstream.Msg) *lease {
	l := &lease{msgs: msgs}
	r.mu.Lock()
	if r.leases == nil {
		r.leases = map[*lease]struct{}{}
	}
	r.leases[l] = struct{}{}
	r.mu.Unlock()
	return l
}

// drop ends a lease; nil is allowed.
func (r *runner) drop(l *lease) {
	r.mu.Lock()
	delete(r.leases, l)
	r.mu.Unlock()
}

// progress sends an in-progress acknowledgement for every leased message.
func (r *runner) progress() {
	r.mu.Lock()
	var msgs []jetstream.Msg
	for l := range r.leases {
		msgs = append(msgs, l.msgs...)
	}
	r.mu.Unlock()
	for _, m := range msgs {
		_ = m.InProgress() // already settled: a no-op; lost: the server redelivers
	}
}

// fail records a failure of one source (conn, nats, sink, dlq); the sink
// is failing since the first of a run of failures.
func (r *runner) fail(source string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails == nil {
		r.fails = map[string]failure{}
	}
	f, ok := r.fails[source]
	if !ok {
		f.since = r.c.cfg.Now()
	}
	f.err = err.Error()
	r.fails[source] = f
}

// ok ends the run of failures of a source.
func (r *runner) ok(source string) {
	r.mu.Lock()
	delete(r.fails, source)
	r.mu.Unlock()
}

// state is the sink's health at now.
func (r *runner) state(now time.Time) SinkState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := SinkState{Name: r.cfg.Name}
	var errs []string
	for _, src := range []string{"conn", "nats", "sink", "dlq"} {
		f, ok := r.fails[src]
		if !ok {
			continue
		}
		if st.FailingSince.IsZero() || f.since.Before(st.FailingSince) {
			st.FailingSince = f.since
		}
		errs = append(errs, src+": "+f.err)
	}
	if !st.FailingSince.IsZero() {
		st.For = now.Sub(st.FailingSince)
		st.Err = strings.Join(errs, "; ")
	}
	return st
}
