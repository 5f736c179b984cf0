//go:build !linux

package confine

import "github.com/sandtrail/sandtrail/supervisor/policy"

func unsupported(c policy.Control, check string) Step {
	return Step{Control: string(c), Check: check, Requested: "-", Effective: "not applied",
		Outcome: Failed, Detail: ErrUnsupported.Error()}
}

// ReadStatus fails: there is no /proc/thread-self/status.
func ReadStatus() (Status, error) { return Status{}, ErrUnsupported }

// NamespaceInodes returns nothing.
func NamespaceInodes() map[string]uint64 { return map[string]uint64{} }

// VerifyNamespaces reports a Failed step.
func VerifyNamespaces(policy.Namespaces, map[string]uint64) []Step {
	return []Step{unsupported(policy.ControlNamespaces, "")}
}

// DropBoundingSet reports a Failed step.
func DropBoundingSet(policy.CapabilityBoundingSet) Step {
	return unsupported(policy.ControlCapabilityBoundingSet, "")
}

// DropPrivileges reports a Failed step.
func DropPrivileges(policy.PrivilegeDrop, int, int, []int, ...policy.Capability) []Step {
	return []Step{unsupported(policy.ControlPrivilegeDrop, "")}
}

// SetCapabilities reports a Failed step.
func SetCapabilities(policy.Capabilities, policy.CapabilityBoundingSet) []Step {
	return []Step{unsupported(policy.ControlCapabilities, "")}
}

// SetRlimits reports a Failed step.
func SetRlimits(policy.Rlimits) []Step { return []Step{unsupported(policy.ControlRlimits, "")} }

// DisableCoreDump reports a Failed step.
func DisableCoreDump(policy.CoreDump) Step { return unsupported(policy.ControlCoreDump, "") }

// SetNoNewPrivs reports a Failed step.
func SetNoNewPrivs(policy.NoNewPrivs) Step { return unsupported(policy.ControlNoNewPrivs, "") }

// LandlockRuleset is never built on this system.
type LandlockRuleset struct{}

// PrepareLandlock reports a Failed step and no ruleset.
func PrepareLandlock(policy.Landlock) (*LandlockRuleset, Step) {
	return nil, unsupported(policy.ControlLandlock, "")
}

// Restrict reports a Failed step.
func (*LandlockRuleset) Restrict() Step { return unsupported(policy.ControlLandlock, "") }

// Close does nothing.
func (*LandlockRuleset) Close() {}

// SeccompFilter is never built on this system.
type SeccompFilter struct{}

// CompileSeccomp fails.
func CompileSeccomp(policy.Seccomp, *policy.SeccompProfile, ...policy.Capability) (*SeccompFilter, error) {
	return nil, ErrUnsupported
}

// Install reports a Failed step.
func (*SeccompFilter) Install(bool) Step { return unsupported(policy.ControlSeccomp, "") }

// Eval fails.
func (*SeccompFilter) Eval(string, [6]uint64) (uint32, error) { return 0, ErrUnsupported }

// String returns "no filter".
func (*SeccompFilter) String() string { return "no filter" }
