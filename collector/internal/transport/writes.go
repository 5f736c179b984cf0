package transport

import (
	"context"
	"sync"
)

// Writes tracks a sink's running writes, so that its Close can wait for
// them and cut them short. The zero value is ready to use; its methods are
// safe for concurrent use.
type Writes struct {
	mu      sync.Mutex
	closed  bool
	running map[*inflight]struct{}
}

// inflight is one running write.
type inflight struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Begin registers a write and returns its context, cancelled by Close
// with Close's cause, and the function that ends it (call it once, when
// the write returns). ok is false after Close: nothing is registered.
func (w *Writes) Begin(ctx context.Context) (_ context.Context, end func(), ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ctx, nil, false
	}
	if w.running == nil {
		w.running = make(map[*inflight]struct{})
	}
	f := &inflight{done: make(chan struct{})}
	ctx, f.cancel = context.WithCancelCause(ctx)
	w.running[f] = struct{}{}
	return ctx, func() {
		w.mu.Lock()
		delete(w.running, f)
		w.mu.Unlock()
		f.cancel(nil)
		close(f.done)
	}, true
}

// Close makes every later Begin fail and waits for the running writes;
// when ctx ends first it cancels them with cause, waits for them to
// return and reports ctx's error. It is idempotent.
func (w *Writes) Close(ctx context.Context, cause error) error {
	w.mu.Lock()
	w.closed = true
	running := make([]*inflight, 0, len(w.running))
	for f := range w.running {
		running = append(running, f)
	}
	w.mu.Unlock()

	var err error
	for _, f := range running {
		select {
		case <-f.done:
		case <-ctx.Done():
			f.cancel(cause)
			<-f.done
			err = ctx.Err()
		}
	}
	return err
}
