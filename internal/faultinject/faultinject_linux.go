package faultinject

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// preset returns the rules of a preset, built fresh at each call.
func preset(name string) ([]Rule, error) {
	u := func(v uint64) *uint64 { return &v }
	landlock := func(e syscall.Errno) []Rule {
		return []Rule{
			{Syscall: unix.SYS_LANDLOCK_CREATE_RULESET, Errno: e},
			{Syscall: unix.SYS_LANDLOCK_ADD_RULE, Errno: e},
			{Syscall: unix.SYS_LANDLOCK_RESTRICT_SELF, Errno: e},
		}
	}
	switch name {
	case CapbsetDropEPERM:
		return []Rule{{Syscall: unix.SYS_PRCTL, Arg0: u(unix.PR_CAPBSET_DROP), Errno: unix.EPERM}}, nil
	case LandlockENOSYS:
		return landlock(unix.ENOSYS), nil
	case LandlockEOPNOTSUPP:
		return landlock(unix.EOPNOTSUPP), nil
	case SeccompENOSYS:
		return []Rule{
			{Syscall: unix.SYS_SECCOMP, Errno: unix.ENOSYS},
			{Syscall: unix.SYS_PRCTL, Arg0: u(unix.PR_SET_SECCOMP), Errno: unix.EINVAL},
			{Syscall: unix.SYS_PRCTL, Arg0: u(unix.PR_GET_SECCOMP), Errno: unix.EINVAL},
		}, nil
	case SeccompEINVAL:
		return []Rule{
			{Syscall: unix.SYS_SECCOMP, Errno: unix.EINVAL},
			{Syscall: unix.SYS_PRCTL, Arg0: u(unix.PR_SET_SECCOMP), Errno: unix.EINVAL},
		}, nil
	case UsernsEPERM:
		return []Rule{
			{Syscall: unix.SYS_UNSHARE, Arg0: u(unix.CLONE_NEWUSER), Arg0Mask: unix.CLONE_NEWUSER, Errno: unix.EPERM},
			{Syscall: unix.SYS_CLONE, Arg0: u(unix.CLONE_NEWUSER), Arg0Mask: unix.CLONE_NEWUSER, Errno: unix.EPERM},
			{Syscall: unix.SYS_CLONE3, Errno: unix.ENOSYS},
		}, nil
	}
	return nil, fmt.Errorf("faultinject: unknown preset %q (want one of %v or a rule NR[/ARG0[&MASK]]=ERRNO)", name, Presets())
}

// errnoName names e, preferring EOPNOTSUPP to its alias ENOTSUP: it is
// the name Landlock and seccomp document.
func errnoName(e syscall.Errno) string {
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP"
	}
	return unix.ErrnoName(e)
}

// auditArch is the seccomp_data.arch value of the running architecture.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("faultinject: architecture %s not supported", runtime.GOARCH)
}

// Offsets into struct seccomp_data: int nr; __u32 arch; __u64
// instruction_pointer; __u64 args[6]. Both supported architectures are
// little-endian, so the low half of args[0] comes first.
const (
	offNr      = 0
	offArch    = 4
	offArg0Low = 16
	offArg0Hi  = 20
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jeq(k uint32) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k}
}

// program returns the classic BPF program [Install] loads for rules:
//
//	load arch; if arch != native: allow
//	for each rule:
//	    load nr; if nr != rule.nr: next rule
//	    [for each half of arg0 with mask bits: load half; and mask; if != want: next rule]
//	    return ERRNO | rule.errno
//	allow
//
// Every jump is forward and skips at most the rest of one rule, so no
// jump offset overflows whatever the number of rules.
func program(rules []Rule) ([]unix.SockFilter, error) {
	arch, err := auditArch()
	if err != nil {
		return nil, err
	}
	ld := func(off uint32) unix.SockFilter { return stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
	prog := []unix.SockFilter{
		ld(offArch),
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: arch},
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW),
	}
	for _, r := range rules {
		if r.Errno <= 0 || r.Errno > 4095 {
			return nil, fmt.Errorf("faultinject: rule %s: errno must be in 1..4095", r)
		}
		if uint64(r.Syscall) > 0xffffffff {
			return nil, fmt.Errorf("faultinject: rule %s: syscall number too large", r)
		}
		block := []unix.SockFilter{ld(offNr), jeq(uint32(r.Syscall))}
		jumps := []int{1} // indexes in block of the "no match" jumps
		if r.Arg0 != nil {
			mask := r.Arg0Mask
			if mask == 0 {
				mask = ^uint64(0)
			}
			want := *r.Arg0 & mask
			for _, half := range []struct {
				off        uint32
				mask, want uint32
			}{
				{offArg0Low, uint32(mask), uint32(want)},
				{offArg0Hi, uint32(mask >> 32), uint32(want >> 32)},
			} {
				if half.mask == 0 {
					continue
				}
				block = append(block, ld(half.off))
				if half.mask != 0xffffffff {
					block = append(block, stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, half.mask))
				}
				jumps = append(jumps, len(block))
				block = append(block, jeq(half.want))
			}
		}
		block = append(block, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(r.Errno)))
		for _, j := range jumps {
			block[j].Jf = uint8(len(block) - j - 1) // to the first instruction of the next rule
		}
		prog = append(prog, block...)
	}
	prog = append(prog, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("faultinject: %d rules make a program of %d instructions, more than %d", len(rules), len(prog), unix.BPF_MAXINSNS)
	}
	return prog, nil
}

// Install loads the filter for rules with
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC), so that it
// applies to every thread of the process and to everything it execs. It
// does not set no_new_privs: the caller needs CAP_SYS_ADMIN, or must have
// set no_new_privs itself. Filters stack and cannot be removed.
func Install(rules []Rule) error {
	prog, err := program(rules)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("faultinject: install seccomp filter: %w (needs CAP_SYS_ADMIN or no_new_privs)", errno)
	case errno != 0:
		return fmt.Errorf("faultinject: install seccomp filter: %w", errno)
	case r != 0:
		return fmt.Errorf("faultinject: install seccomp filter: thread %d could not be synchronised", r)
	}
	return nil
}

// install locks the calling goroutine to its thread, which it then never
// leaves: the thread goes on to exec.
func install(rules []Rule) error {
	runtime.LockOSThread()
	return Install(rules)
}
