// Package confine applies sandtrail's confinement controls to the calling
// thread, one at a time, and reports for each what the policy asked and
// what the kernel actually gave.
//
// It is meant for the supervisor's helper process: already in its new
// namespaces, it calls runtime.LockOSThread, applies the controls in the
// order runc, nsjail and bubblewrap use, and finally execs the workload
// from the same thread:
//
//	VerifyNamespaces                     (the parent created them with clone flags)
//	DropBoundingSet
//	PrepareLandlock, CompileSeccomp      (open path fds while still privileged)
//	ResolveIDs, DropPrivileges           (setgroups, setgid, setuid)
//	SetCapabilities                      (effective, permitted, inheritable, ambient)
//	SetRlimits, DisableCoreDump
//	SetNoNewPrivs
//	(*LandlockRuleset).Restrict
//	(*SeccompFilter).Install             (last)
//
// Capabilities, no_new_privs, seccomp without TSYNC and Landlock below ABI 8
// are state of one thread: what this package sets on the exec'ing thread is
// what the workload inherits; the helper's other threads keep their own.
//
// Guarantees:
//   - Every function acts on the calling thread only (rlimits, which the
//     kernel keeps per process, excepted). None logs, exits or panics, and
//     each returns its [Step] or Steps even when it fails.
//   - A Step's Effective is read back from the kernel after the change
//     (/proc/thread-self/status, prctl GET calls, getrlimit, the Landlock
//     ABI and an access probe), never inferred from a nil error. Applied
//     means the read-back equals what was asked; less than that is
//     Partial, nothing is Failed; a control whose mode is off is Skipped.
//   - Nothing is reported Applied that the kernel did not enforce: a kernel
//     without Landlock, or one that refuses a bounding-set drop, gives a
//     Failed step with the errno, whatever the control's mode. Deciding
//     what a mode makes of an outcome is the caller's job.
//
// Decisions a caller should know:
//   - A Landlock path that cannot be opened (missing, or not reachable even
//     for the privileged helper) fails the control when its mode is
//     required: the policy cannot be applied as written, and a typo in a
//     work directory is better caught than run around. Under best_effort
//     the rule is skipped and the step is Partial, naming the path. A
//     skipped rule never widens access: no rule means no access there.
//   - Landlock rights the running ABI lacks are left out (go-landlock's
//     compatibility rule) and the step is Partial, naming each one; an ABI
//     below the policy's min_abi fails a required control outright.
//   - Seccomp filters are compiled for the native architecture only
//     (x86_64, or aarch64). Calls of any other architecture (the x86 and
//     x32 sub-architectures included) are refused: i386 calls kill the
//     process, x32 calls fail with ENOSYS. A rule's argument conditions are
//     tried before unconditional rules for the same system call.
package confine
