// Package supervisor launches a command confined by a policy and turns
// every confinement decision into OCSF events.
//
// Launch probes the host (package probe) and decides, before anything is
// forked, whether the policy can be met. It then re-executes the sandtrail
// binary as a hidden helper in the policy's new namespaces. The helper
// applies the controls on one locked OS thread in the order runc, nsjail
// and bubblewrap use (package confine), reads back after each what the
// kernel really gave, and reports every step over a status pipe. The
// parent turns the steps into events exactly as EVENTS.md says (a
// Compliance Finding per control, a Detection Finding for every
// degradation or failure, a Device Config State Change with the run's
// posture and score), hands them to its Recorder, and only once the
// Recorder has made them durable tells the helper to exec the target. A
// required control that failed stops the launch before exec. Process
// Activity Launch, Set User ID and Terminate follow.
//
// The supervisor never imports the emitter: it is handed a Recorder.
package supervisor

import (
	"context"

	"github.com/sandtrail/sandtrail/schema"
)

// Recorder makes the events of one run durable, in order (an
// emitter.Trail spools them with one fsync). Emit and End must return only
// once the events are durable. End records the run's last events: the last
// of them closes the run's trail (its final count, its signature). It is
// called from one goroutine at a time.
type Recorder interface {
	Emit(ctx context.Context, evs ...schema.Event) error
	End(ctx context.Context, evs ...schema.Event) error
}
