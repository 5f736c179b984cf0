package confine

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// SeccompFilter is a compiled seccomp BPF program for the native
// architecture, ready to install. It is immutable.
type SeccompFilter struct {
	off       bool
	requested string
	prog      []unix.SockFilter
	insns     []bpf.Instruction
	evidence  map[string]string
}

// mustAllow are the system calls every filter must allow: the helper
// reports to its parent over a pipe after installing it, and Go's
// syscall.Exec restores RLIMIT_NOFILE just before execve.
var mustAllow = []string{"read", "write", "close", "exit_group", "execve", "setrlimit", "prlimit64"}

// nativeArch describes the architecture the filter is compiled for.
type nativeArch struct {
	info   *arch.Info
	scmp   string // SCMP_ARCH_* name
	docker string // Docker's name in includes/excludes
	audit  uint32 // seccomp_data.arch
}

func native() (nativeArch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return nativeArch{arch.X86_64, "SCMP_ARCH_X86_64", "amd64", unix.AUDIT_ARCH_X86_64}, nil
	case "arm64":
		return nativeArch{arch.AARCH64, "SCMP_ARCH_AARCH64", "arm64", unix.AUDIT_ARCH_AARCH64}, nil
	}
	return nativeArch{}, fmt.Errorf("confine: seccomp: architecture %s is not supported (x86_64 and aarch64 are)", runtime.GOARCH)
}

// CompileSeccomp compiles the seccomp profile of p into BPF for the native
// architecture. prof is the profile to compile; when nil, p.Effective() is
// used, and the built-in profile when p names "default" and nothing is
// loaded. p.DefaultAction, when set, overrides the profile's.
//
// keep are the capabilities the workload can hold (the bounding set's keep
// list, as Docker reads includes.caps and excludes.caps); the kernel
// version for minKernel is the running one's; arches are Docker's names
// (amd64 here).
//
// Actions: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO (errnoRet, default EPERM),
// SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD (kill the thread),
// SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG. Comparisons: EQ, NE,
// LT, LE, GT, GE on 64 bits and MASKED_EQ ((arg & value) == valueTwo).
// Several comparisons of one argument in a rule are alternatives, as runc
// reads them; the others must all hold. Refused with an error:
// SCMP_ACT_TRACE (no tracer), SCMP_ACT_ERRNO with errno 0, a MASKED_EQ
// whose valueTwo has bits outside the mask (it can never match), unknown
// actions or comparisons, a profile without rules for the native
// architecture, a filter over 4096 instructions, and one that does not
// allow read, write, close, exit_group, execve, setrlimit and prlimit64
// (with zero arguments). System call names the architecture lacks are
// skipped, as runc does, and listed in the evidence.
//
// A nil filter and nil error are never returned together; when p is off
// the filter installs nothing and reports Skipped.
func CompileSeccomp(p policy.Seccomp, prof *policy.SeccompProfile, keep ...policy.Capability) (*SeccompFilter, error) {
	if p.Mode == policy.Off {
		return &SeccompFilter{off: true, requested: "off", evidence: map[string]string{}}, nil
	}
	if prof == nil {
		prof = p.Effective()
	}
	if prof == nil && (p.Profile == "default" || p.Profile == "") {
		prof = policy.DefaultSeccompProfile()
	}
	if prof == nil {
		return nil, fmt.Errorf("confine: seccomp: profile %q is not loaded", p.Profile)
	}
	name := p.Profile
	if name == "" {
		name = "default"
	}
	na, err := native()
	if err != nil {
		return nil, err
	}
	if err := checkArch(prof, na); err != nil {
		return nil, fmt.Errorf("confine: seccomp profile %s: %w", name, err)
	}
	defAction, defErrno := prof.DefaultAction, prof.DefaultErrnoRet
	if p.DefaultAction != "" {
		defAction = p.DefaultAction
	}
	def, err := action(defAction, defErrno)
	if err != nil {
		return nil, fmt.Errorf("confine: seccomp profile %s: defaultAction: %w", name, err)
	}
	release, err := kernelRelease()
	if err != nil {
		return nil, err
	}
	insns, skipped, err := program(prof, na, def, func(r policy.SeccompSyscall) bool {
		return applies(r, na, capMask(keep), release)
	})
	if err != nil {
		return nil, fmt.Errorf("confine: seccomp profile %s: %w", name, err)
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, fmt.Errorf("confine: seccomp profile %s: assemble: %w", name, err)
	}
	if len(raw) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("confine: seccomp profile %s: %d instructions, more than the kernel's %d", name, len(raw), unix.BPF_MAXINSNS)
	}
	f := &SeccompFilter{insns: insns, evidence: map[string]string{}}
	for _, r := range raw {
		f.prog = append(f.prog, unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K})
	}
	for _, sc := range mustAllow {
		if act, err := f.Eval(sc, [6]uint64{}); err != nil || act&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ALLOW && act&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_LOG {
			return nil, fmt.Errorf("confine: seccomp profile %s: %s gets %s, but the helper needs it after the filter is installed", name, sc, actionString(act))
		}
	}
	f.requested = fmt.Sprintf("profile %s (%d rules, default %s)", name, len(prof.Syscalls), defAction)
	f.evidence["profile_sha256"] = prof.SHA256()
	f.evidence["arch"] = na.scmp
	f.evidence["instructions"] = strconv.Itoa(len(raw))
	f.evidence["other_arches"] = "kill_process"
	if na.audit == unix.AUDIT_ARCH_X86_64 {
		f.evidence["other_arches"] = "kill_process (i386 included); x32 calls: ENOSYS"
	}
	if len(skipped) > 0 {
		f.evidence["skipped_names"] = strings.Join(skipped, ",")
	}
	return f, nil
}

// checkArch makes sure the profile has rules for the native architecture.
func checkArch(prof *policy.SeccompProfile, na nativeArch) error {
	switch {
	case len(prof.Architectures) > 0:
		if !slices.Contains(prof.Architectures, na.scmp) {
			return fmt.Errorf("architectures %v do not include the native %s", prof.Architectures, na.scmp)
		}
	case len(prof.ArchMap) > 0:
		if !slices.ContainsFunc(prof.ArchMap, func(a policy.SeccompArch) bool { return a.Architecture == na.scmp }) {
			return fmt.Errorf("archMap has no entry for the native %s", na.scmp)
		}
	}
	return nil
}

// applies evaluates a rule's includes and excludes as Docker does.
func applies(r policy.SeccompSyscall, na nativeArch, keep uint64, release [2]int) bool {
	hasCap := func(name string) bool {
		c, err := policy.ParseCapability(name)
		return err == nil && keep&(1<<uint(c)) != 0
	}
	atLeast := func(v string) bool {
		var maj, minor int
		if _, err := fmt.Sscanf(v, "%d.%d", &maj, &minor); err != nil {
			return false
		}
		return release[0] > maj || release[0] == maj && release[1] >= minor
	}
	if e := r.Excludes; e != nil {
		if slices.Contains(e.Arches, na.docker) || slices.ContainsFunc(e.Caps, hasCap) || e.MinKernel != "" && atLeast(e.MinKernel) {
			return false
		}
	}
	if in := r.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, na.docker) {
			return false
		}
		for _, c := range in.Caps {
			if !hasCap(c) {
				return false
			}
		}
		if in.MinKernel != "" && !atLeast(in.MinKernel) {
			return false
		}
	}
	return true
}

// kernelRelease returns the running kernel's major and minor version.
func kernelRelease() ([2]int, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return [2]int{}, fmt.Errorf("confine: uname: %w", err)
	}
	var v [2]int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &v[0], &v[1]); err != nil {
		return [2]int{}, fmt.Errorf("confine: kernel release %q: %w", unix.ByteSliceToString(u.Release[:]), err)
	}
	return v, nil
}

// String describes the filter, e.g. "profile default (3 rules, default
// SCMP_ACT_ALLOW), 120 instructions".
func (f *SeccompFilter) String() string {
	if f == nil {
		return "no filter"
	}
	if f.off {
		return "off"
	}
	return fmt.Sprintf("%s, %d instructions", f.requested, len(f.prog))
}

// Install loads the filter on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER), without TSYNC: the thread that execs
// the workload is the one that must carry it. logDenials adds
// SECCOMP_FILTER_FLAG_LOG (a kernel without it refuses the flag, and the
// filter is then installed without it: Partial). It needs no_new_privs or
// CAP_SYS_ADMIN. Effective is read back from /proc/thread-self/status:
// Applied when Seccomp is 2 and Seccomp_filters went up by one. A nil
// filter gives a Failed step; a filter compiled for a policy that is off,
// a Skipped one.
func (f *SeccompFilter) Install(logDenials bool) Step {
	if f == nil || !f.off && len(f.prog) == 0 {
		s := newStep(policy.ControlSeccomp, "", "a compiled filter")
		s.Effective = "not installed"
		s.fail(nil, "no seccomp filter to install (CompileSeccomp failed)")
		return s
	}
	s := newStep(policy.ControlSeccomp, "", f.requested)
	maps.Copy(s.Evidence, f.evidence)
	effective := func(st Status) string {
		return fmt.Sprintf("Seccomp %d, Seccomp_filters %d", st.Seccomp, st.SeccompFilters)
	}
	// A failure to read the state before is no reason not to install the
	// filter: the read-back afterwards decides.
	before, berr := ReadStatus()
	if berr == nil {
		s.Evidence["Seccomp_before"] = strconv.Itoa(before.Seccomp)
		s.Evidence["Seccomp_filters_before"] = strconv.Itoa(before.SeccompFilters)
	} else {
		s.Evidence["before_error"] = berr.Error()
	}
	if f.off {
		s.Outcome, s.Detail = Skipped, "mode off: no seccomp filter"
		if s.Effective = "unknown"; berr == nil {
			s.Effective = effective(before)
		}
		return s
	}
	if logDenials {
		s.Requested += ", log denials"
	}
	prog := slices.Clone(f.prog)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(0)
	if logDenials {
		flags = unix.SECCOMP_FILTER_FLAG_LOG
	}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	var notes []string
	if e == unix.EINVAL && flags != 0 {
		notes = append(notes, "SECCOMP_FILTER_FLAG_LOG refused (EINVAL): denials are not logged")
		s.Evidence["log_flag_error"] = "EINVAL"
		flags = 0
		_, _, e = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	}
	runtime.KeepAlive(prog)
	s.Evidence["syscall"] = fmt.Sprintf("seccomp(SECCOMP_SET_MODE_FILTER, %#x, %d instructions)", flags, len(prog))
	after, rerr := ReadStatus()
	if rerr != nil {
		s.fail(rerr, "cannot read the seccomp state back: %v", rerr)
		return s
	}
	s.Effective = effective(after)
	s.Evidence["Seccomp"] = strconv.Itoa(after.Seccomp)
	s.Evidence["Seccomp_filters"] = strconv.Itoa(after.SeccompFilters)
	added := after.Seccomp == 2 && berr == nil && (after.SeccompFilters < 0 || after.SeccompFilters == before.SeccompFilters+1)
	switch {
	case e != 0:
		if berr == nil && after.Seccomp == before.Seccomp && after.SeccompFilters == before.SeccompFilters {
			s.Effective += " (unchanged)"
		}
		why := ""
		switch e {
		case unix.EACCES:
			why = ": the thread has neither no_new_privs nor CAP_SYS_ADMIN"
		case unix.ENOSYS:
			why = ": seccomp is not in this kernel"
		case unix.EINVAL:
			why = ": the kernel refuses filter mode or this program"
		}
		s.fail(e, "seccomp(SECCOMP_SET_MODE_FILTER) failed%s", why)
	case berr != nil:
		s.fail(berr, "the filter was installed, but without the state from before there is no proof it is this one: %v", berr)
	case !added:
		s.fail(nil, "seccomp returned 0 but the status file does not show the new filter")
	case len(notes) > 0:
		s.Outcome, s.Errno, s.Detail = Partial, "EINVAL", strings.Join(notes, "; ")
	default:
		s.Outcome = Applied
		if after.SeccompFilters < 0 {
			s.Detail = "Seccomp_filters is not reported by this kernel (before 5.9): mode 2 only"
		}
	}
	return s
}
