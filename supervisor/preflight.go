package supervisor

import (
	"fmt"

	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
	"github.com/sandtrail/sandtrail/supervisor/probe"
)

// preflight decides from the host probe, before anything is forked,
// whether a required control cannot possibly be met. It returns the
// failing controls' steps (with the probe's evidence); none when the
// launch may go ahead. A best_effort control the host cannot do is not a
// reason to stop here: the helper tries it and reports the degradation.
//
// The bounding set is judged here only when the helper will not get a
// new user namespace: inside one, the helper holds CAP_SETPCAP again and
// the drop succeeds, as it really does for the sandbox.
func preflight(p *policy.Policy, r *probe.Report, userns bool) []confine.Step {
	var out []confine.Step
	fail := func(c policy.Control, facility string) {
		f, _ := r.Facility(facility)
		out = append(out, confine.Step{
			Control:   string(c),
			Requested: string(p.Mode(c)),
			Effective: fmt.Sprintf("host: %s", f.Status),
			Outcome:   confine.Failed,
			Errno:     f.Errno,
			Detail:    "refused before fork: the host probe says " + f.Detail,
			Evidence:  f.Evidence,
		})
	}
	if p.Mode(policy.ControlCapabilityBoundingSet) == policy.Required && !userns && r.BoundingSetDrop != probe.DropPermitted {
		fail(policy.ControlCapabilityBoundingSet, probe.FacilityBoundingSet)
	}
	if p.Mode(policy.ControlLandlock) == policy.Required && r.LandlockABI < max(p.Landlock.MinABI, 1) {
		fail(policy.ControlLandlock, probe.FacilityLandlock)
	}
	if p.Mode(policy.ControlSeccomp) == policy.Required {
		if f, ok := r.Facility(probe.FacilitySeccomp); ok && f.Status == probe.Unavailable {
			fail(policy.ControlSeccomp, probe.FacilitySeccomp)
		}
	}
	if p.Mode(policy.ControlNoNewPrivs) == policy.Required {
		if f, ok := r.Facility(probe.FacilityNoNewPrivs); ok && f.Status == probe.Unavailable {
			fail(policy.ControlNoNewPrivs, probe.FacilityNoNewPrivs)
		}
	}
	return out
}
