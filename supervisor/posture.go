package supervisor

import (
	"fmt"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// Verdict is a control's outcome for one run.
type Verdict string

const (
	Applied  Verdict = "applied"  // as the policy asked, verified
	Degraded Verdict = "degraded" // best_effort and the host gave less; the sandbox runs
	Failed   Verdict = "failed"   // not achieved where it had to be; the sandbox is refused
	Disabled Verdict = "disabled" // mode off
)

// weights are each control's share of the posture score (they sum to 100).
// Modelled on systemd-analyze security's exposure score: what matters most
// for containing untrusted code weighs most. seccomp and the capability
// sets bound the kernel attack surface and what the process may do;
// Landlock bounds what it can read, write and connect to; the bounding set
// and no_new_privs stop privileges from ever being regained; namespaces
// isolate views of the system; privilege drop removes root's file access;
// rlimits and core dumps bound resource abuse and leaks.
var weights = map[policy.Control]int{
	policy.ControlSeccomp:               20,
	policy.ControlCapabilities:          15,
	policy.ControlLandlock:              15,
	policy.ControlCapabilityBoundingSet: 10,
	policy.ControlNoNewPrivs:            10,
	policy.ControlNamespaces:            10,
	policy.ControlPrivilegeDrop:         10,
	policy.ControlRlimits:               5,
	policy.ControlCoreDump:              5,
}

// Posture is the run's overall confinement.
type Posture struct {
	Score  int // 0 (nothing contained) to 100 (every control as strict as sandtrail can make it)
	Secure bool
	Band   string // Strong (90-100), Good (70-89), Weak (40-69), Exposed (0-39)
}

// score returns a control's contribution: full weight when applied, half
// when degraded (part of the protection is in place, and the rest is
// reported), nothing when disabled or failed. A control that is applied
// but partly configured away (namespaces with kinds turned off) scores by
// the share of its parts in effect.
func (r *ControlResult) score() int {
	w := weights[r.Control]
	switch r.Verdict {
	case Applied:
		if r.partsTotal > 0 && r.partsOn < r.partsTotal {
			return w * r.partsOn / r.partsTotal
		}
		return w
	case Degraded:
		return w / 2
	}
	return 0
}

// assess computes the posture of a run from its control results.
func assess(results []*ControlResult) Posture {
	p := Posture{Secure: true}
	for _, r := range results {
		p.Score += r.score()
		if r.Verdict != Applied {
			p.Secure = false
		}
	}
	switch {
	case p.Score >= 90:
		p.Band = "Strong"
	case p.Score >= 70:
		p.Band = "Good"
	case p.Score >= 40:
		p.Band = "Weak"
	default:
		p.Band = "Exposed"
	}
	return p
}

// riskLevel maps the score to OCSF risk_level_id: the lower the score, the
// higher the risk.
func (p Posture) riskLevel() schema.RiskLevelID {
	switch {
	case p.Score >= 90:
		return schema.RiskLevelIDInfo
	case p.Score >= 70:
		return schema.RiskLevelIDLow
	case p.Score >= 40:
		return schema.RiskLevelIDMedium
	case p.Score >= 20:
		return schema.RiskLevelIDHigh
	}
	return schema.RiskLevelIDCritical
}

func (p Posture) String() string {
	level := "Secure"
	if !p.Secure {
		level = "At Risk"
	}
	return fmt.Sprintf("%s, score %d/100 (%s)", level, p.Score, p.Band)
}
