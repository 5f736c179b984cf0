package confine

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

func errnoRet(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

const (
	retAllow       = unix.SECCOMP_RET_ALLOW
	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
)

// evalCase is a call and the SECCOMP_RET_* value the filter must give.
type evalCase struct {
	name string
	args [6]uint64
	want uint32
}

func checkEval(t *testing.T, f *SeccompFilter, cases []evalCase) {
	t.Helper()
	for _, c := range cases {
		got, err := f.Eval(c.name, c.args)
		if err != nil {
			t.Errorf("Eval(%s, %#x): %v", c.name, c.args, err)
			continue
		}
		if got != c.want {
			t.Errorf("Eval(%s, %#x) = %s (%#x), want %s (%#x)", c.name, c.args, actionString(got), got, actionString(c.want), c.want)
		}
	}
}

func compile(t *testing.T, prof *policy.SeccompProfile, keep ...policy.Capability) *SeccompFilter {
	t.Helper()
	f, err := CompileSeccomp(policy.Seccomp{Mode: policy.Required, Profile: "test"}, prof, keep...)
	if err != nil {
		t.Fatalf("CompileSeccomp: %v", err)
	}
	return f
}

func TestCompileDefaultProfile(t *testing.T) {
	f, err := CompileSeccomp(policy.Default().Seccomp, nil)
	if err != nil {
		t.Fatalf("CompileSeccomp(default): %v", err)
	}
	t.Logf("%s; evidence %v", f, f.evidence)
	checkEval(t, f, []evalCase{
		{"read", [6]uint64{}, retAllow},
		{"write", [6]uint64{1, 0, 10}, retAllow},
		{"execve", [6]uint64{}, retAllow},
		{"prlimit64", [6]uint64{0, unix.RLIMIT_NOFILE}, retAllow},
		{"setrlimit", [6]uint64{unix.RLIMIT_NOFILE}, retAllow},
		{"keyctl", [6]uint64{}, errnoRet(unix.EPERM)},
		{"ptrace", [6]uint64{unix.PTRACE_TRACEME}, errnoRet(unix.EPERM)},
		{"mount", [6]uint64{}, errnoRet(unix.EPERM)},
		{"unshare", [6]uint64{unix.CLONE_NEWUSER}, errnoRet(unix.EPERM)},
		{"unshare", [6]uint64{unix.CLONE_NEWNS}, errnoRet(unix.EPERM)},
		{"clone", [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, errnoRet(unix.EPERM)},
		{"clone", [6]uint64{1<<32 | unix.CLONE_NEWUSER}, errnoRet(unix.EPERM)},
		{"clone", [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, retAllow},
		{"clone", [6]uint64{1 << 32}, retAllow},
		{"clone3", [6]uint64{}, errnoRet(unix.ENOSYS)},
		{"io_uring_setup", [6]uint64{}, errnoRet(unix.EPERM)},
	})
	// Other architectures, i386 included, are killed; x32 calls get ENOSYS.
	for _, c := range []struct {
		nr, arch uint32
		want     uint32
	}{
		{310 /* i386 unshare */, unix.AUDIT_ARCH_I386, retKillProcess},
		{3 /* i386 read */, unix.AUDIT_ARCH_I386, retKillProcess},
		{0, unix.AUDIT_ARCH_AARCH64, retKillProcess},
		{0x40000000 | 272 /* x32 unshare */, unix.AUDIT_ARCH_X86_64, errnoRet(unix.ENOSYS)},
	} {
		got, err := f.evalRaw(c.nr, c.arch, [6]uint64{})
		if err != nil || got != c.want {
			t.Errorf("evalRaw(nr %#x, arch %#x) = %s, %v; want %s", c.nr, c.arch, actionString(got), err, actionString(c.want))
		}
	}
	if !strings.HasPrefix(f.requested, "profile default (3 rules, default SCMP_ACT_ALLOW)") {
		t.Errorf("requested = %q", f.requested)
	}
}

// TestCompileOps checks each comparison on both 32-bit halves.
func TestCompileOps(t *testing.T) {
	const big = 0x1_0000_0005 // high word 1, low word 5
	rule := func(op string, value, valueTwo uint64) *policy.SeccompProfile {
		eperm := uint(unix.EPERM)
		return &policy.SeccompProfile{
			DefaultAction: policy.ActAllow,
			Syscalls: []policy.SeccompSyscall{{
				Names: []string{"getpriority"}, Action: policy.ActErrno, ErrnoRet: &eperm,
				Args: []policy.SeccompArg{{Index: 1, Value: value, ValueTwo: valueTwo, Op: policy.SeccompOp(op)}},
			}},
		}
	}
	denied := errnoRet(unix.EPERM)
	tests := []struct {
		op              string
		value, valueTwo uint64
		arg             uint64
		want            uint32
	}{
		{"SCMP_CMP_EQ", big, 0, big, denied},
		{"SCMP_CMP_EQ", big, 0, 5, retAllow},
		{"SCMP_CMP_EQ", big, 0, 0x2_0000_0005, retAllow},
		{"SCMP_CMP_NE", big, 0, big, retAllow},
		{"SCMP_CMP_NE", big, 0, 5, denied},
		{"SCMP_CMP_NE", big, 0, 0x1_0000_0006, denied},
		{"SCMP_CMP_LT", big, 0, 0x0_ffff_ffff, denied},
		{"SCMP_CMP_LT", big, 0, big, retAllow},
		{"SCMP_CMP_LT", big, 0, 0x1_0000_0004, denied},
		{"SCMP_CMP_LE", big, 0, big, denied},
		{"SCMP_CMP_LE", big, 0, 0x1_0000_0006, retAllow},
		{"SCMP_CMP_GT", big, 0, big, retAllow},
		{"SCMP_CMP_GT", big, 0, 0x1_0000_0006, denied},
		{"SCMP_CMP_GT", big, 0, 0x2_0000_0000, denied},
		{"SCMP_CMP_GE", big, 0, big, denied},
		{"SCMP_CMP_GE", big, 0, 0x1_0000_0004, retAllow},
		{"SCMP_CMP_GE", big, 0, 0x0_ffff_ffff, retAllow},
		// MASKED_EQ: (arg & value) == valueTwo.
		{"SCMP_CMP_MASKED_EQ", 0xff00, 0x1200, 0x12ab, denied},
		{"SCMP_CMP_MASKED_EQ", 0xff00, 0x1200, 0x13ab, retAllow},
		{"SCMP_CMP_MASKED_EQ", 0xff00, 0x1200, 0x0200, retAllow},
		{"SCMP_CMP_MASKED_EQ", 0x1_0000_0000, 0x1_0000_0000, 0x1_0000_0000, denied},
		{"SCMP_CMP_MASKED_EQ", 0x1_0000_0000, 0x1_0000_0000, 0xffff_ffff, retAllow},
		{"SCMP_CMP_MASKED_EQ", 0x1_0000_00ff, 0, 0x2_0000_ff00, denied},
		{"SCMP_CMP_MASKED_EQ", 0x1_0000_00ff, 0, 0x1_0000_0000, retAllow},
		{"SCMP_CMP_MASKED_EQ", 0, 0, 0xdead, denied},
	}
	for _, tt := range tests {
		f := compile(t, rule(tt.op, tt.value, tt.valueTwo))
		got, err := f.Eval("getpriority", [6]uint64{0, tt.arg})
		if err != nil || got != tt.want {
			t.Errorf("%s value %#x valueTwo %#x, arg %#x: got %s, %v; want %s", tt.op, tt.value, tt.valueTwo, tt.arg, actionString(got), err, actionString(tt.want))
		}
	}
}

func TestCompileOCIProfile(t *testing.T) {
	prof, err := policy.LoadSeccompProfile(filepath.Join("testdata", "seccomp", "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	sp := policy.Seccomp{Mode: policy.Required, Profile: "small.json", Loaded: prof}
	f, err := CompileSeccomp(sp, nil)
	if err != nil {
		t.Fatalf("CompileSeccomp: %v", err)
	}
	if got := f.evidence["skipped_names"]; got != "no_such_call_on_any_arch" {
		t.Errorf("skipped_names = %q, want the name x86_64 lacks", got)
	}
	eperm := errnoRet(unix.EPERM)
	checkEval(t, f, []evalCase{
		{"write", [6]uint64{}, retAllow},
		{"getcwd", [6]uint64{}, eperm}, // default action
		{"socket", [6]uint64{unix.AF_UNIX}, retAllow},
		{"socket", [6]uint64{unix.AF_INET}, eperm},
		{"getpriority", [6]uint64{unix.PRIO_PROCESS, 0}, retAllow},
		{"getpriority", [6]uint64{unix.PRIO_PROCESS, 1}, errnoRet(unix.EDOM)},
		{"getpriority", [6]uint64{unix.PRIO_PGRP, 0}, errnoRet(unix.EDOM)},
		{"uname", [6]uint64{}, errnoRet(unix.ENODATA)},
		{"ptrace", [6]uint64{}, eperm}, // includes.caps: CAP_SYS_PTRACE is not kept
		{"getcpu", [6]uint64{}, eperm}, // excludes.arches: amd64
		{"clone3", [6]uint64{}, errnoRet(unix.ENOSYS)},
	})
	// With CAP_SYS_PTRACE kept, the includes rule applies (minKernel 4.8 < 6.x).
	f = compile(t, prof, policy.Capability(unix.CAP_SYS_PTRACE))
	checkEval(t, f, []evalCase{{"ptrace", [6]uint64{}, retAllow}})

	// The policy's default_action overrides the profile's.
	sp.DefaultAction = policy.ActKillProcess
	f, err = CompileSeccomp(sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkEval(t, f, []evalCase{{"getcwd", [6]uint64{}, retKillProcess}, {"write", [6]uint64{}, retAllow}})
}

func TestCompileRefuses(t *testing.T) {
	eperm, zero := uint(unix.EPERM), uint(0)
	allow := func(rules ...policy.SeccompSyscall) *policy.SeccompProfile {
		return &policy.SeccompProfile{DefaultAction: policy.ActAllow, Syscalls: rules}
	}
	trace, err := policy.LoadSeccompProfile(filepath.Join("testdata", "seccomp", "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		prof *policy.SeccompProfile
		want string
	}{
		{"trace", trace, "SCMP_ACT_TRACE is not supported"},
		{"errno 0", allow(policy.SeccompSyscall{Names: []string{"uname"}, Action: policy.ActErrno, ErrnoRet: &zero}), "errno 0 is not supported"},
		{"unknown op", allow(policy.SeccompSyscall{Names: []string{"personality"}, Action: policy.ActErrno, ErrnoRet: &eperm,
			Args: []policy.SeccompArg{{Index: 0, Value: 8, Op: "SCMP_CMP_XOR"}}}), `comparison "SCMP_CMP_XOR" is not supported`},
		{"masked_eq outside the mask", allow(policy.SeccompSyscall{Names: []string{"personality"}, Action: policy.ActErrno, ErrnoRet: &eperm,
			Args: []policy.SeccompArg{{Index: 0, Value: 0xf0, ValueTwo: 0x0f, Op: "SCMP_CMP_MASKED_EQ"}}}), "could never match"},
		{"no native arch", &policy.SeccompProfile{DefaultAction: policy.ActAllow, Architectures: []string{"SCMP_ARCH_AARCH64"}}, "do not include the native"},
		{"no native archMap", &policy.SeccompProfile{DefaultAction: policy.ActAllow,
			ArchMap: []policy.SeccompArch{{Architecture: "SCMP_ARCH_S390X"}}}, "archMap has no entry"},
		{"denies prlimit64", allow(policy.SeccompSyscall{Names: []string{"prlimit64"}, Action: policy.ActErrno, ErrnoRet: &eperm}), "prlimit64 gets errno EPERM"},
		{"kills write", allow(policy.SeccompSyscall{Names: []string{"write"}, Action: policy.ActKillProcess}), "write gets kill_process"},
		{"default deny without execve", &policy.SeccompProfile{DefaultAction: policy.ActErrno, Syscalls: []policy.SeccompSyscall{
			{Names: []string{"read", "write", "close", "exit_group", "setrlimit", "prlimit64"}, Action: policy.ActAllow}}}, "execve gets errno EPERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompileSeccomp(policy.Seccomp{Mode: policy.Required, Profile: tt.name}, tt.prof)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CompileSeccomp: got %v, %v; want an error containing %q", f, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "confine: seccomp profile "+tt.name+": ") {
				t.Errorf("error %q does not name the profile", err)
			}
		})
	}
	// An unknown comparison in a file is caught when the profile is parsed,
	// with file, line and field.
	_, err = policy.LoadSeccompProfile(filepath.Join("testdata", "seccomp", "unsupported-op.json"))
	if err == nil || !strings.Contains(err.Error(), "unsupported-op.json:8:") || !strings.Contains(err.Error(), "SCMP_CMP_XOR") {
		t.Errorf("LoadSeccompProfile(unsupported-op.json): %v, want an error naming the line and SCMP_CMP_XOR", err)
	}
}

// TestCompileRuncArgs checks runc's reading of several comparisons of one
// argument: alternatives, each its own rule.
func TestCompileRuncArgs(t *testing.T) {
	eperm := uint(unix.EPERM)
	f := compile(t, &policy.SeccompProfile{DefaultAction: policy.ActAllow, Syscalls: []policy.SeccompSyscall{{
		Names: []string{"personality"}, Action: policy.ActErrno, ErrnoRet: &eperm,
		Args: []policy.SeccompArg{
			{Index: 0, Value: 1, Op: "SCMP_CMP_EQ"},
			{Index: 0, Value: 2, Op: "SCMP_CMP_EQ"},
			{Index: 1, Value: 7, Op: "SCMP_CMP_EQ"},
		},
	}}})
	denied := errnoRet(unix.EPERM)
	checkEval(t, f, []evalCase{
		{"personality", [6]uint64{1}, denied},
		{"personality", [6]uint64{2}, denied},
		{"personality", [6]uint64{3, 7}, denied},
		{"personality", [6]uint64{3, 8}, retAllow},
	})
}

func TestCompileOff(t *testing.T) {
	f, err := CompileSeccomp(policy.Seccomp{Mode: policy.Off}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Install(false)
	if s.Outcome != Skipped || s.Control != "seccomp" {
		t.Errorf("Install of an off filter: %s, want skipped", s)
	}
	var nilFilter *SeccompFilter
	if s := nilFilter.Install(false); s.Outcome != Failed {
		t.Errorf("Install of a nil filter: %s, want failed", s)
	}
	if s := new(SeccompFilter).Install(false); s.Outcome != Failed {
		t.Errorf("Install of a zero filter: %s, want failed", s)
	}
}

// TestCompileConditionsDoNotLeak: a call whose argument conditions fail
// must not be compared as if its argument were a system call number
// (go-seccomp-bpf v1.6.0 did: socket(AF_INET) matched "open", number 2).
func TestCompileConditionsDoNotLeak(t *testing.T) {
	f := compile(t, &policy.SeccompProfile{DefaultAction: policy.ActErrno, Syscalls: []policy.SeccompSyscall{
		{Names: []string{"socket"}, Action: policy.ActAllow, Args: []policy.SeccompArg{{Index: 0, Value: unix.AF_UNIX, Op: "SCMP_CMP_EQ"}}},
		{Names: []string{"getpriority"}, Action: policy.ActAllow, Args: []policy.SeccompArg{{Index: 1, Value: 0, Op: "SCMP_CMP_EQ"}}},
		{Names: append([]string{"open", "stat"}, mustAllow...), Action: policy.ActAllow},
	}})
	eperm := errnoRet(unix.EPERM)
	checkEval(t, f, []evalCase{
		{"socket", [6]uint64{unix.AF_UNIX}, retAllow},
		{"socket", [6]uint64{unix.AF_INET}, eperm}, // 2 is open's number
		{"socket", [6]uint64{4}, eperm},            // 4 is stat's number
		{"getpriority", [6]uint64{0, 0}, retAllow},
		{"getpriority", [6]uint64{0, 2}, eperm},
		{"open", [6]uint64{}, retAllow},
	})
}
