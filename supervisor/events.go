package supervisor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// run carries what every event of one launch shares.
type run struct {
	id     string
	policy *policy.Policy
	polUID string // policy.UID(), computed once (about 75 us)
	argv   []string
	pid    int             // the helper, which becomes the target at exec
	final  *confine.Status // the helper's state just before exec, if it got there
	actor  *schema.Process // the supervisor
	cpid   string          // the sandboxed process's uuid, shared by every event that names it
	now    func() int64    // ms
}

// eventCodes are the stable metadata.event_code prefixes of each control;
// the suffix is the verdict (CAPBSET_DEGRADED). docs/EVENTS.md lists them.
var eventCodes = map[policy.Control]string{
	policy.ControlCapabilityBoundingSet: "CAPBSET",
	policy.ControlCapabilities:          "CAPS",
	policy.ControlPrivilegeDrop:         "PRIVDROP",
	policy.ControlNoNewPrivs:            "NNP",
	policy.ControlSeccomp:               "SECCOMP",
	policy.ControlLandlock:              "LANDLOCK",
	policy.ControlNamespaces:            "NAMESPACES",
	policy.ControlRlimits:               "RLIMITS",
	policy.ControlCoreDump:              "COREDUMP",
}

// highSeverity: a degraded or failed control of these is a High finding;
// the others are Medium (EVENTS.md).
var highSeverity = map[policy.Control]bool{
	policy.ControlCapabilityBoundingSet: true,
	policy.ControlCapabilities:          true,
	policy.ControlSeccomp:               true,
	policy.ControlPrivilegeDrop:         true,
	policy.ControlNoNewPrivs:            true,
}

func newUID() string {
	u, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return u.String()
}

func meta(code string) *schema.Metadata {
	return &schema.Metadata{UID: newUID(), EventCode: code}
}

func (r *run) policyObject() *schema.Policy {
	return &schema.Policy{Name: r.policy.Name, Version: r.policy.Version, UID: r.polUID, IsApplied: schema.Ptr(true)}
}

// sandboxed is the confined process: process in Process Activity, the
// evidence's process in findings.
func (r *run) sandboxed() *schema.Process {
	p := &schema.Process{CmdLine: strings.Join(r.argv, " "), Sandbox: r.policy.Name, ParentProcess: r.actor, CPID: r.cpid}
	if len(r.argv) > 0 {
		p.Name = baseName(r.argv[0])
	}
	if r.pid > 0 {
		p.PID = schema.Ptr(r.pid)
	}
	if r.final != nil {
		p.EUID = schema.Ptr(int(r.final.EUID))
		p.EGID = schema.Ptr(int(r.final.EGID))
	}
	return p
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// parameters renders the steps' requested and effective values.
func parameters(res *ControlResult) []schema.KeyValueObject {
	kv := []schema.KeyValueObject{{Name: "mode", Value: string(res.Mode)}}
	for _, s := range res.Steps {
		prefix := ""
		if s.Check != "" {
			prefix = s.Check + "."
		}
		if s.Requested != "" {
			kv = append(kv, schema.KeyValueObject{Name: prefix + "requested", Value: s.Requested})
		}
		if s.Effective != "" {
			kv = append(kv, schema.KeyValueObject{Name: prefix + "effective", Value: s.Effective})
		}
		if s.Errno != "" {
			kv = append(kv, schema.KeyValueObject{Name: prefix + "errno", Value: s.Errno})
		}
	}
	return kv
}

func checks(res *ControlResult) []schema.Check {
	if len(res.Steps) < 2 && (len(res.Steps) == 0 || res.Steps[0].Check == "") {
		return nil
	}
	var out []schema.Check
	for _, s := range res.Steps {
		c := schema.Check{Name: s.Check, Desc: s.Detail}
		switch s.Outcome {
		case confine.Applied:
			c.StatusID = schema.CheckStatusIDPass
		case confine.Skipped:
			c.StatusID = schema.CheckStatusIDOther
			c.Status = "Disabled"
		case confine.Partial:
			c.StatusID = schema.CheckStatusIDWarning
		default:
			c.StatusID = schema.CheckStatusIDFail
		}
		if c.Name == "" {
			c.Name = s.Control
		}
		out = append(out, c)
	}
	return out
}

func evidenceData(res *ControlResult) map[string]any {
	d := map[string]any{"control": string(res.Control), "mode": string(res.Mode), "verdict": string(res.Verdict)}
	for _, s := range res.Steps {
		key := s.Check
		if key == "" {
			key = "step"
		}
		step := map[string]any{"outcome": string(s.Outcome)}
		for k, v := range map[string]string{"requested": s.Requested, "effective": s.Effective, "errno": s.Errno, "detail": s.Detail} {
			if v != "" {
				step[k] = v
			}
		}
		if len(s.Evidence) > 0 {
			ev := map[string]any{}
			for k, v := range s.Evidence {
				ev[k] = v
			}
			step["evidence"] = ev
		}
		d[key] = step
	}
	if len(res.Compensating) > 0 {
		d["compensating_controls"] = res.Compensating
	}
	return d
}

// complianceFinding is the per-control Compliance Finding.
func (r *run) complianceFinding(res *ControlResult) *schema.ComplianceFinding {
	code := eventCodes[res.Control]
	ev := schema.NewComplianceFinding(schema.ComplianceFindingActivityIDCreate)
	ev.Metadata = meta(code + "_" + strings.ToUpper(string(res.Verdict)))
	ev.Time = r.now()
	ev.Policy = r.policyObject()
	ev.Actor = &schema.Actor{Process: r.actor}
	ev.FindingInfo = &schema.FindingInfo{UID: r.id + "/" + string(res.Control), Title: fmt.Sprintf("%s %s", res.Control, res.Verdict)}
	ev.Compliance = &schema.Compliance{Control: string(res.Control), Standards: []string{"sandtrail-policy"}, ControlParameters: parameters(res), Checks: checks(res)}
	ev.Evidences = []schema.Evidences{{Process: r.sandboxed(), Data: evidenceData(res)}}
	ev.IsAlert = schema.Ptr(false)
	ev.StatusCode = res.Errno
	switch res.Verdict {
	case Applied:
		ev.SeverityID = schema.SeverityIDInformational
		ev.Compliance.StatusID = schema.ComplianceStatusIDPass
		ev.ActionID = schema.ActionIDAllowed
		ev.Message = fmt.Sprintf("%s applied as the policy asked", res.Control)
	case Disabled:
		ev.SeverityID = schema.SeverityIDLow
		ev.Compliance.StatusID = schema.ComplianceStatusIDOther
		ev.Compliance.Status = "Disabled"
		ev.Message = fmt.Sprintf("%s disabled by policy %s", res.Control, r.policy.Name)
	case Degraded:
		ev.SeverityID = schema.SeverityIDMedium
		ev.Compliance.StatusID = schema.ComplianceStatusIDWarning
		ev.ActionID = schema.ActionIDAllowed
		ev.Message = fmt.Sprintf("%s degraded (best_effort): %s", res.Control, res.Reason)
	case Failed:
		ev.SeverityID = schema.SeverityIDHigh
		ev.Compliance.StatusID = schema.ComplianceStatusIDFail
		ev.ActionID = schema.ActionIDDenied
		ev.DispositionID = schema.DispositionIDBlocked
		ev.Message = fmt.Sprintf("%s failed (required): %s; launch refused", res.Control, res.Reason)
	}
	return ev
}

// detectionFinding alerts on a degraded or failed control.
func (r *run) detectionFinding(res *ControlResult, related *schema.ComplianceFinding) *schema.DetectionFinding {
	ev := schema.NewDetectionFinding(schema.DetectionFindingActivityIDCreate)
	ev.Metadata = meta(eventCodes[res.Control] + "_" + strings.ToUpper(string(res.Verdict)))
	ev.Time = r.now()
	ev.Policy = r.policyObject()
	ev.Actor = &schema.Actor{Process: r.actor}
	ev.IsAlert = schema.Ptr(true)
	ev.StatusCode = res.Errno
	ev.SeverityID = schema.SeverityIDMedium
	if highSeverity[res.Control] {
		ev.SeverityID = schema.SeverityIDHigh
	}
	title := fmt.Sprintf("Sandbox control %s degraded", res.Control)
	ev.ActionID = schema.ActionIDAllowed
	if res.Verdict == Failed {
		title = fmt.Sprintf("Sandbox refused: required control %s failed", res.Control)
		ev.ActionID = schema.ActionIDDenied
		ev.DispositionID = schema.DispositionIDBlocked
	}
	ev.FindingInfo = &schema.FindingInfo{
		UID: r.id + "/" + string(res.Control) + "/" + string(res.Verdict), Title: title,
		Desc:          res.Reason,
		Types:         []string{"Sandbox Confinement"},
		RelatedEvents: []schema.RelatedEvent{{UID: related.Metadata.UID, TypeUID: schema.Ptr(related.TypeUID()), Type: "Compliance Finding: Create"}},
	}
	ev.Evidences = []schema.Evidences{{Process: r.sandboxed(), Data: evidenceData(res)}}
	ev.Remediation = &schema.Remediation{Desc: remediation(res)}
	ev.Message = title + ": " + res.Reason
	if len(res.Compensating) > 0 {
		ev.Message += "; in effect instead: " + strings.Join(res.Compensating, ", ")
	}
	ev.Observables = []schema.Observable{{Name: "actor.process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "sandtrail"}}
	return ev
}

func remediation(res *ControlResult) string {
	var s string
	switch res.Control {
	case policy.ControlCapabilityBoundingSet:
		s = "Give the supervisor CAP_SETPCAP (rootless Podman: --cap-add=SETPCAP) and make sure no LSM profile denies PR_CAPBSET_DROP (AppArmor: allow capability setpcap)."
	case policy.ControlCapabilities:
		s = "Let the supervisor lower its capability sets: check for a seccomp filter or LSM that denies capset or PR_CAP_AMBIENT."
	case policy.ControlPrivilegeDrop:
		s = "Run the supervisor as root or with CAP_SETUID and CAP_SETGID, or set privilege_drop.when_unprivileged: keep to run as the invoking user."
	case policy.ControlNoNewPrivs:
		s = "Remove the seccomp filter or LSM rule that denies prctl(PR_SET_NO_NEW_PRIVS)."
	case policy.ControlSeccomp:
		s = "Use a kernel with CONFIG_SECCOMP_FILTER and remove any outer filter that denies seccomp(2); check the profile compiles for this architecture."
	case policy.ControlLandlock:
		switch res.Errno {
		case "ENOSYS":
			s = "Use a kernel built with Landlock (CONFIG_SECURITY_LANDLOCK, Linux 5.13 or later)."
		case "EOPNOTSUPP":
			s = "Landlock is built in but disabled: add landlock to the lsm= kernel boot parameter."
		default:
			s = "Make sure no_new_privs is set before Landlock and that no seccomp filter or LSM blocks the landlock_* system calls; check the policy's Landlock paths exist."
		}
	case policy.ControlNamespaces:
		s = "Allow the supervisor to create namespaces: run it as root, or allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0)."
	case policy.ControlRlimits:
		s = "Lower the policy's limits to at most the supervisor's hard limits, or raise the hard limits of the supervisor's environment (raising needs CAP_SYS_RESOURCE)."
	case policy.ControlCoreDump:
		s = "Remove the seccomp filter or LSM rule that denies setrlimit(RLIMIT_CORE) or PR_SET_DUMPABLE."
	}
	if res.Verdict == Degraded {
		s += " To refuse such launches instead of running degraded, set mode: required for " + string(res.Control) + "."
	}
	return s
}

// posture is the run's Device Config State Change.
func (r *run) postureEvent(p Posture, results []*ControlResult) *schema.DeviceConfigStateChange {
	ev := schema.NewDeviceConfigStateChange(schema.DeviceConfigStateChangeActivityIDCollect)
	ev.Time = r.now()
	ev.Actor = &schema.Actor{Process: r.actor}
	ev.Base.Policy = r.policyObject()
	ev.RiskScore = schema.Ptr(p.Score)
	ev.RiskLevelID = schema.Ptr(p.riskLevel())
	ev.SecurityLevelID = schema.SecurityLevelIDSecure
	ev.SeverityID = schema.SeverityIDInformational
	ev.Metadata = meta("POSTURE_SECURE")
	var parts []string
	states := map[schema.SecurityStateStateID]bool{}
	for _, res := range results {
		parts = append(parts, fmt.Sprintf("%s %s", res.Control, res.Verdict))
		switch res.Verdict {
		case Disabled:
			states[schema.SecurityStateStateIDProtectionOff] = true
		case Degraded, Failed:
			states[schema.SecurityStateStateIDProtectionMalfunction] = true
			states[schema.SecurityStateStateIDPolicyMismatch] = true
		}
	}
	if !p.Secure {
		ev.SecurityLevelID = schema.SecurityLevelIDAtRisk
		ev.SeverityID = schema.SeverityIDMedium
		ev.Metadata = meta("POSTURE_AT_RISK")
	}
	var ids []int
	for s := range states {
		ids = append(ids, int(s))
	}
	sort.Ints(ids)
	for _, s := range ids {
		ev.SecurityStates = append(ev.SecurityStates, schema.SecurityState{StateID: schema.SecurityStateStateID(s)})
	}
	ev.RiskDetails = strings.Join(parts, "; ")
	ev.Message = fmt.Sprintf("sandbox posture of run %s: %s", r.id, p)
	return ev
}

// processEvent is a Process Activity about the sandboxed process.
func (r *run) processEvent(activity schema.ProcessActivityActivityID, ok bool, code, msg string) *schema.ProcessActivity {
	ev := schema.NewProcessActivity(activity)
	ev.Metadata = meta(code)
	ev.Time = r.now()
	ev.Actor = &schema.Actor{Process: r.actor}
	ev.Process = r.sandboxed()
	ev.SeverityID = schema.SeverityIDInformational
	ev.StatusID = schema.ProcessActivityStatusIDSuccess
	ev.ActionID = schema.ActionIDAllowed
	if !ok {
		ev.SeverityID = schema.SeverityIDHigh
		ev.StatusID = schema.ProcessActivityStatusIDFailure
		ev.ActionID = schema.ActionIDDenied
		ev.DispositionID = schema.DispositionIDBlocked
	}
	ev.Message = msg
	return ev
}
