package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/sandtrail/sandtrail/collector"
)

// Defaults of ExportConfig.
const (
	DefaultExportRetryMin    = time.Second
	DefaultExportRetryMax    = time.Minute
	DefaultExportMaxAttempts = 20
)

// ExportConfig says how Export retries. The zero value means the
// defaults.
type ExportConfig struct {
	// RetryMin and RetryMax bound the pause before writing again what a
	// sink marked Retry: RetryMin doubled per attempt, capped at RetryMax,
	// and never shorter than the sink's RetryAfter. Defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
	// MaxAttempts is how many times an event is written before Export
	// gives up with an error. Default 20.
	MaxAttempts int
}

func (c ExportConfig) withDefaults() ExportConfig {
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultExportRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultExportRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultExportMaxAttempts
	}
	return c
}

// Rejection is an event a sink refused for good.
type Rejection struct {
	UID       string
	StreamSeq uint64
	Reason    string
}

// ExportStats counts what Export did.
type ExportStats struct {
	Delivered, Rejected uint64
	// Rejections lists the first 100 rejected events.
	Rejections []Rejection
}

// Export writes a batch of replayed events to sink, which must honour
// metadata.uid as its idempotency key (every collector sink does), so
// exporting a range twice, or one the sink already holds, leaves one copy.
// What the sink marks Retry is written again after a backoff until it is
// delivered or rejected; Export returns an error when an event was tried
// MaxAttempts times or ctx ended, with st counting what was settled.
// Rejected events are counted and listed in st, not retried.
func Export(ctx context.Context, sink collector.Sink, ms []Message, cfg ExportConfig, st *ExportStats) error {
	cfg = cfg.withDefaults()
	pending := make([]collector.Event, len(ms))
	seqs := make([]uint64, len(ms))
	for i := range ms {
		m := &ms[i]
		pending[i] = collector.Event{
			UID: m.UID, ClassUID: m.ClassUID, ClassName: m.ClassName, SeverityID: m.SeverityID, Time: m.Time,
			RunID: m.Run, Host: m.Host, Subject: m.Subject, Data: m.Data,
		}
		seqs[i] = m.StreamSeq
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		out := sink.Write(ctx, pending)
		if len(out) != len(pending) {
			return fmt.Errorf("replay: export: the sink returned %d outcomes for %d events", len(out), len(pending))
		}
		var wait time.Duration
		var reason string
		retry, retrySeqs := pending[:0], seqs[:0]
		for i, o := range out {
			switch o.Status {
			case collector.Delivered:
				st.Delivered++
			case collector.Reject:
				st.Rejected++
				if len(st.Rejections) < 100 {
					st.Rejections = append(st.Rejections, Rejection{UID: pending[i].UID, StreamSeq: seqs[i], Reason: o.Reason})
				}
			default:
				retry, retrySeqs = append(retry, pending[i]), append(retrySeqs, seqs[i])
				wait, reason = max(wait, o.RetryAfter), o.Reason
			}
		}
		pending, seqs = retry, retrySeqs
		if len(pending) == 0 {
			return nil
		}
		if attempt >= cfg.MaxAttempts {
			return fmt.Errorf("replay: export: %d events still not delivered after %d attempts (stream sequence %d first): %s",
				len(pending), attempt, seqs[0], reason)
		}
		backoff := cfg.RetryMin << min(attempt-1, 30)
		if backoff <= 0 || backoff > cfg.RetryMax {
			backoff = cfg.RetryMax
		}
		t := time.NewTimer(max(backoff, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("replay: export: %d events not delivered: %w", len(pending), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
