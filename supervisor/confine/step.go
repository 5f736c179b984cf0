package confine

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported is what the functions return, or report in their steps,
// on a system other than Linux.
var ErrUnsupported = errors.New("confine: confinement needs Linux")

// Outcome is what became of a control, or of one part of it.
type Outcome string

const (
	// Applied: the kernel reports exactly what was asked.
	Applied Outcome = "applied"
	// Partial: less than asked (some capabilities still held, Landlock
	// rights the ABI lacks, a hard limit that could not be raised).
	Partial Outcome = "partial"
	// Failed: not applied; the kernel reports the state from before.
	Failed Outcome = "failed"
	// Skipped: the control's mode is off; nothing was attempted.
	Skipped Outcome = "skipped"
)

// Step is the outcome of one control or one part of it.
type Step struct {
	// Control is the policy control name (policy.Control):
	// capability_bounding_set, capabilities, privilege_drop, no_new_privs,
	// seccomp, landlock, namespaces, rlimits, core_dump.
	Control string `json:"control"`
	// Check is the part, for controls with parts: "setgroups", "setgid",
	// "setuid"; "effective", "permitted", "inheritable", "ambient"; a
	// namespace kind ("user", "pid", ...); an rlimit name ("nofile").
	// Empty otherwise.
	Check string `json:"check,omitempty"`
	// Requested is what the policy asked, short and exact.
	Requested string `json:"requested"`
	// Effective is what the kernel reports afterwards, read back.
	Effective string `json:"effective"`
	// Outcome compares Effective with Requested.
	Outcome Outcome `json:"outcome"`
	// Errno is the errno name of the failure ("EPERM", "ENOSYS",
	// "EOPNOTSUPP", ...), "" if none.
	Errno string `json:"errno,omitempty"`
	// Detail is a sentence for a person.
	Detail string `json:"detail,omitempty"`
	// Evidence holds the system calls made, their arguments and the raw
	// values read back (CapBnd in hex, the Seccomp mode, the Landlock
	// ABI...).
	Evidence map[string]string `json:"evidence,omitempty"`
}

// String returns the step on one line, e.g.
// "landlock: applied: requested ...; effective ...".
func (s Step) String() string {
	var b strings.Builder
	b.WriteString(s.Control)
	if s.Check != "" {
		b.WriteString("/" + s.Check)
	}
	fmt.Fprintf(&b, ": %s: requested %s; effective %s", s.Outcome, s.Requested, s.Effective)
	if s.Errno != "" {
		b.WriteString("; errno " + s.Errno)
	}
	if s.Detail != "" {
		b.WriteString("; " + s.Detail)
	}
	return b.String()
}
