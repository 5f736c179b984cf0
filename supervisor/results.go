package supervisor

import (
	"fmt"
	"strings"

	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// ControlResult is one control's outcome for a run: what the policy asked,
// the steps the helper took with what the kernel gave, and the verdict.
type ControlResult struct {
	Control policy.Control
	Mode    policy.Mode
	Steps   []confine.Step
	Verdict Verdict
	// Reason says, for a person, why the control is degraded or failed.
	Reason string
	// Errno is the errno name of the first step that fell short.
	Errno string
	// Compensating lists the controls actually in effect for the run that
	// limit the damage of this one being degraded, read back from the
	// kernel; never a control that is itself degraded or off. "none" when
	// there is none.
	Compensating []string

	partsOn, partsTotal int // for controls with optional parts (namespace kinds)
}

// judge turns the helper's steps into one result per control, in policy
// order, and applies the rules that span controls. final is the helper's
// status read just before exec.
func judge(p *policy.Policy, steps []confine.Step, final *confine.Status) []*ControlResult {
	by := map[string][]confine.Step{}
	for _, s := range steps {
		by[s.Control] = append(by[s.Control], s)
	}
	var out []*ControlResult
	for _, c := range policy.Controls() {
		r := &ControlResult{Control: c, Mode: p.Mode(c), Steps: by[string(c)]}
		r.decide()
		if c == policy.ControlNamespaces {
			r.partsTotal = 7
			for _, s := range r.Steps {
				if s.Outcome == confine.Applied {
					r.partsOn++
				}
			}
		}
		out = append(out, r)
	}
	for _, r := range out {
		if r.Verdict == Degraded {
			r.Compensating = compensating(out, final, r.Control)
		}
	}
	boundingSetRule(out, final)
	return out
}

// decide sets the verdict from the mode and the steps.
func (r *ControlResult) decide() {
	if r.Mode == policy.Off {
		r.Verdict = Disabled
		r.Reason = "disabled by policy (mode off)"
		return
	}
	if len(r.Steps) == 0 {
		// The helper never reached this control: it is not in effect.
		r.Steps = []confine.Step{{Control: string(r.Control), Outcome: confine.Failed, Detail: "not attempted: the helper stopped before this control"}}
	}
	var short []string
	for _, s := range r.Steps {
		if s.Outcome == confine.Applied || s.Outcome == confine.Skipped {
			continue
		}
		if r.Errno == "" {
			r.Errno = s.Errno
		}
		what := s.Check
		if what == "" {
			what = string(r.Control)
		}
		msg := what + ": " + string(s.Outcome)
		if s.Errno != "" {
			msg += " (" + s.Errno + ")"
		}
		if s.Detail != "" {
			msg += ": " + s.Detail
		}
		short = append(short, msg)
	}
	switch {
	case len(short) == 0:
		r.Verdict = Applied
	case r.Mode == policy.BestEffort:
		r.Verdict = Degraded
		r.Reason = strings.Join(short, "; ")
	default:
		r.Verdict = Failed
		r.Reason = strings.Join(short, "; ")
	}
}

// compensating lists, from what the kernel reported, the controls in
// effect other than skip.
func compensating(rs []*ControlResult, final *confine.Status, skip policy.Control) []string {
	var out []string
	applied := func(c policy.Control) bool {
		for _, r := range rs {
			if r.Control == c {
				return r.Verdict == Applied
			}
		}
		return false
	}
	if skip != policy.ControlNoNewPrivs && final != nil && final.NoNewPrivs && applied(policy.ControlNoNewPrivs) {
		out = append(out, "no_new_privs set")
	}
	if skip != policy.ControlSeccomp && final != nil && final.Seccomp == 2 && applied(policy.ControlSeccomp) {
		out = append(out, fmt.Sprintf("seccomp filter installed (%d filters)", final.SeccompFilters))
	}
	if skip != policy.ControlLandlock && applied(policy.ControlLandlock) {
		for _, r := range rs {
			if r.Control == policy.ControlLandlock && len(r.Steps) > 0 {
				out = append(out, "Landlock enforced ("+r.Steps[len(r.Steps)-1].Effective+")")
			}
		}
	}
	if skip != policy.ControlCapabilities && final != nil && applied(policy.ControlCapabilities) &&
		final.CapEff == 0 && final.CapPrm == 0 && final.CapInh == 0 && final.CapAmb == 0 {
		out = append(out, "effective, permitted, inheritable and ambient capabilities empty")
	}
	if len(out) == 0 {
		out = []string{"none: no compensating control is in effect"}
	}
	return out
}

// boundingSetRule: a bounding set that could not be cleared is tolerated
// (best_effort) only when no_new_privs is in effect and the process holds
// no capability at all, read back just before exec: then execve cannot
// grow its permitted set and the non-empty bounding set only limits what
// could never be gained. Otherwise the launch fails closed even under
// best_effort.
func boundingSetRule(rs []*ControlResult, final *confine.Status) {
	for _, r := range rs {
		if r.Control != policy.ControlCapabilityBoundingSet || r.Verdict != Degraded {
			continue
		}
		var missing []string
		switch {
		case final == nil:
			missing = append(missing, "the helper's final state is unknown")
		default:
			if !final.NoNewPrivs {
				missing = append(missing, "no_new_privs is not set")
			}
			if final.CapEff|final.CapPrm|final.CapInh|final.CapAmb != 0 {
				missing = append(missing, fmt.Sprintf("capabilities remain (CapEff %016x CapPrm %016x CapInh %016x CapAmb %016x)",
					final.CapEff, final.CapPrm, final.CapInh, final.CapAmb))
			}
		}
		if len(missing) > 0 {
			r.Verdict = Failed
			r.Reason += "; degrading the bounding set is accepted only with no_new_privs in effect and every capability set empty, but " +
				strings.Join(missing, " and ")
			r.Compensating = nil
		}
	}
}
