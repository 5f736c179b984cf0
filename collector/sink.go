// Package collector exports sandtrail's events from JetStream to SIEMs with
// at-least-once delivery: one durable pull consumer per sink, every event
// re-validated as untrusted bytes, acknowledged only after its sink
// confirmed it, and anything that can never be accepted sent to the
// dead-letter stream with its reason. Sinks live in subpackages named after
// what they talk to (collector/splunk, collector/elastic, ...), each behind
// the small Sink interface declared here.
package collector

import (
	"context"
	"time"
)

// Event is one validated event handed to a sink.
type Event struct {
	UID        string // metadata.uid: the idempotency key every sink must honour
	ClassUID   int
	ClassName  string // e.g. "Compliance Finding"
	SeverityID int
	Time       int64  // event time, ms since the epoch
	RunID      string // metadata.correlation_uid
	Host       string // device.hostname
	Subject    string // the NATS subject it arrived on
	// Data is the event's JSON exactly as published. Sinks must not modify
	// it; they may keep it only until Write returns.
	Data []byte
}

// Status is what became of one event in a Write.
type Status uint8

const (
	// Delivered: the receiver confirmed the event, or already had it
	// (an Elasticsearch 409 on create with the same _id).
	Delivered Status = iota
	// Retry: a transient failure; the event is redelivered after a backoff
	// (at least RetryAfter, when set).
	Retry
	// Reject: the receiver will never accept this event; it goes to the
	// dead-letter stream with Reason.
	Reject
	// Defer: the sink takes the event later, by design rather than by
	// failure (the alert sink gathers a run's events into one alert). The
	// collector gives it back to the server, to be redelivered after
	// RetryAfter; it is not logged as a failure nor counted as a retry.
	Defer
)

func (s Status) String() string {
	switch s {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	case Defer:
		return "defer"
	}
	return "unknown"
}

// Outcome is a sink's verdict on one event of a batch.
type Outcome struct {
	Status     Status
	Reason     string        // why, for Retry, Reject and Defer: logged, counted, and put in the dead letter
	RetryAfter time.Duration // for Retry: the receiver's Retry-After, if it gave one; for Defer: when to redeliver
}

// Sink delivers batches of events to one receiver.
//
// Write is called by one goroutine at a time per sink and returns one
// Outcome per event, in order (len(outcomes) == len(batch)); a failure that
// affects the whole batch (connection refused, timeout) marks every event
// Retry. Write must return only once the receiver has confirmed what it
// reports Delivered (written and fsynced, HTTP 2xx with per-item success,
// acknowledged by the syslog server's TCP stream...), and must give up when
// ctx ends (marking what is unconfirmed Retry). Close flushes and releases
// everything the sink holds; it is idempotent, and Write after Close marks
// every event Retry.
type Sink interface {
	Write(ctx context.Context, batch []Event) []Outcome
	Close(ctx context.Context) error
}

// RetryAll returns n Retry outcomes with the reason, for whole-batch failures.
func RetryAll(n int, reason string, after time.Duration) []Outcome {
	out := make([]Outcome, n)
	for i := range out {
		out[i] = Outcome{Status: Retry, Reason: reason, RetryAfter: after}
	}
	return out
}
