package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultSeccompProfile(t *testing.T) {
	p := DefaultSeccompProfile()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultSeccompProfile().Validate() = %v", err)
	}
	if p.DefaultAction != ActAllow {
		t.Errorf("default action %s, want %s (a deny-list, so ordinary programs run)", p.DefaultAction, ActAllow)
	}
	// Docker's default denials, and the user-namespace escape.
	for _, name := range []string{
		"add_key", "bpf", "clock_settime", "init_module", "finit_module", "delete_module", "kexec_load",
		"keyctl", "mount", "umount2", "pivot_root", "ptrace", "process_vm_readv", "process_vm_writev",
		"reboot", "swapon", "swapoff", "setns", "unshare", "userfaultfd", "perf_event_open",
		"open_by_handle_at", "name_to_handle_at", "acct", "syslog", "iopl", "ioperm", "lookup_dcookie",
		"quotactl", "settimeofday", "vhangup", "kcmp",
	} {
		act, ok := p.unconditional(name)
		if !ok || act != ActErrno {
			t.Errorf("%s gets %s (unconditional %v), want %s", name, act, ok, ActErrno)
		}
	}
	// What must keep working: the helper's exec and Go's rlimit restore.
	for _, name := range []string{"execve", "prlimit64", "setrlimit", "read", "write", "landlock_restrict_self", "seccomp"} {
		if act, ok := p.unconditional(name); !ok || act != ActAllow {
			t.Errorf("%s gets %s (unconditional %v), want %s", name, act, ok, ActAllow)
		}
	}
	eperm, enosys := uint(1), uint(38)
	wantClone := SeccompSyscall{
		Names: []string{"clone"}, Action: ActErrno, ErrnoRet: &eperm,
		Args:    []SeccompArg{{Index: 0, Value: 0x10000000, ValueTwo: 0x10000000, Op: "SCMP_CMP_MASKED_EQ"}},
		Comment: "no new user namespace: clone with CLONE_NEWUSER",
	}
	wantClone3 := SeccompSyscall{Names: []string{"clone3"}, Action: ActErrno, ErrnoRet: &enosys,
		Comment: "clone3 flags cannot be inspected: ENOSYS makes libc fall back to clone"}
	if diff := cmp.Diff(p.Syscalls[1:], []SeccompSyscall{wantClone, wantClone3}); diff != "" {
		t.Errorf("clone and clone3 rules (-got +want):\n%s", diff)
	}
	if *p.Syscalls[0].ErrnoRet != 1 {
		t.Errorf("deny-list errno %d, want EPERM (1)", *p.Syscalls[0].ErrnoRet)
	}
	if names := p.Syscalls[0].Names; slices.Contains(names, "clone") || slices.Contains(names, "clone3") {
		t.Errorf("deny-list must leave clone and clone3 to their own rules: %v", names)
	}
	// Each call returns an independent value.
	p.Syscalls[0].Names[0] = "changed"
	if DefaultSeccompProfile().Syscalls[0].Names[0] == "changed" {
		t.Error("DefaultSeccompProfile shares its slices between calls")
	}
}

func TestParseSeccompProfile(t *testing.T) {
	got, err := LoadSeccompProfile("testdata/profiles/small.json")
	if err != nil {
		t.Fatal(err)
	}
	one, enosys := uint(1), uint(38)
	want := &SeccompProfile{
		DefaultAction:   ActErrno,
		DefaultErrnoRet: &one,
		ArchMap: []SeccompArch{
			{Architecture: "SCMP_ARCH_X86_64", SubArchitectures: []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
			{Architecture: "SCMP_ARCH_AARCH64"},
		},
		Syscalls: []SeccompSyscall{
			{Names: []string{"arch_prctl", "brk", "close", "execve", "exit", "exit_group", "fstat", "futex",
				"getrandom", "mmap", "mprotect", "munmap", "newfstatat", "openat", "prlimit64", "read",
				"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "setrlimit", "write"}, Action: ActAllow},
			{Names: []string{"socket"}, Action: ActAllow, Args: []SeccompArg{{Index: 0, Value: 1, Op: "SCMP_CMP_EQ"}},
				Comment: "AF_UNIX only"},
			{Names: []string{"ptrace"}, Action: ActAllow,
				Includes: &SeccompFilter{Caps: []string{"CAP_SYS_PTRACE"}, MinKernel: "4.8"}},
			{Names: []string{"clone"}, Action: ActAllow,
				Args:     []SeccompArg{{Index: 0, Value: 2114060288, Op: "SCMP_CMP_MASKED_EQ"}},
				Excludes: &SeccompFilter{Arches: []string{"s390", "s390x"}}},
			{Names: []string{"clone3"}, Action: ActErrno, ErrnoRet: &enosys},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("LoadSeccompProfile (-got +want):\n%s", diff)
	}
	// The JSON encoding is the OCI format again.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSeccompProfile("again.json", b)
	if err != nil {
		t.Fatalf("re-parse of the encoding: %v\n%s", err, b)
	}
	if diff := cmp.Diff(again, got); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
	if got.SHA256() != again.SHA256() {
		t.Error("SHA256 differs after a round trip")
	}
}

func TestSeccompProfileSHA256IgnoresComments(t *testing.T) {
	p := DefaultSeccompProfile()
	q := DefaultSeccompProfile()
	q.Syscalls[0].Comment = "another comment"
	if p.SHA256() != q.SHA256() {
		t.Error("a comment changed the SHA-256")
	}
	q.Syscalls[0].Names = append(q.Syscalls[0].Names, "chmod")
	if p.SHA256() == q.SHA256() {
		t.Error("a new rule did not change the SHA-256")
	}
}

// TestParseSeccompProfileErrors covers each kind of mistake in a profile,
// asserting the whole error text.
func TestParseSeccompProfileErrors(t *testing.T) {
	const head = `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [`
	tests := []struct {
		name, src, want string
	}{
		{"yaml, not json", "defaultAction: SCMP_ACT_ALLOW\n", "p.json:1:1: not a JSON object (a seccomp profile is JSON)"},
		{"array", `[{"defaultAction": "SCMP_ACT_ALLOW"}]`, "p.json:1:1: not a JSON object (a seccomp profile is JSON)"},
		{"missing defaultAction", `{"syscalls": []}`, "p.json:1:1: defaultAction: missing"},
		{"unknown top-level field", `{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrno": 1}`,
			"p.json:1:37: defaultErrno: unknown field (want one of archMap, architectures, defaultAction, defaultErrnoRet, flags, listenerMetadata, listenerPath, syscalls)"},
		{"flags", `{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}`,
			"p.json:1:46: flags: not supported: filter flags come from the policy (controls.seccomp.log_denials)"},
		{"listenerMetadata", `{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}`,
			"p.json:1:57: listenerMetadata: not supported: sandtrail has no seccomp notification listener"},
		{"notify", `{"defaultAction": "SCMP_ACT_NOTIFY"}`,
			"p.json:1:19: defaultAction: SCMP_ACT_NOTIFY is not supported: sandtrail has no seccomp notification listener"},
		{"unknown action", head + `{"names": ["read"], "action": "SCMP_ACT_DENY"}]}`,
			"p.json:1:80: syscalls[0].action: unknown action \"SCMP_ACT_DENY\""},
		{"defaultErrnoRet with allow", `{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}`,
			"p.json:1:56: defaultErrnoRet: only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
		{"errnoRet with allow", head + `{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}`,
			"p.json:1:110: syscalls[0].errnoRet: only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
		{"errnoRet out of range", head + `{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}]}`,
			"p.json:1:110: syscalls[0].errnoRet: 5000 is out of range 0..4095"},
		{"name and names", head + `{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}`,
			"p.json:1:50: syscalls[0].name: both name and names (use names)"},
		{"no names", head + `{"action": "SCMP_ACT_ALLOW"}]}`, "p.json:1:50: syscalls[0].names: missing"},
		{"empty names", head + `{"names": [], "action": "SCMP_ACT_ALLOW"}]}`, "p.json:1:60: syscalls[0].names: no system call names"},
		{"bad syscall name", head + `{"names": ["read", "Write()"], "action": "SCMP_ACT_ALLOW"}]}`,
			"p.json:1:69: syscalls[0].names[1]: invalid system call name \"Write()\""},
		{"names not a list", head + `{"names": "read", "action": "SCMP_ACT_ALLOW"}]}`,
			"p.json:1:60: syscalls[0].names: want a list, got \"read\""},
		{"arg index", head + `{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`,
			"p.json:1:119: syscalls[0].args[0].index: 6 is out of range 0..5"},
		{"arg op", head + `{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}`,
			"p.json:1:140: syscalls[0].args[0].op: unknown value \"EQ\" (want SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)"},
		{"arg missing op", head + `{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1}]}]}`,
			"p.json:1:109: syscalls[0].args[0].op: missing"},
		{"arg value negative", head + `{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}`,
			"p.json:1:131: syscalls[0].args[0].value: -1 is out of range 0..18446744073709551615"},
		{"unknown arch", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "x86_64"]}`,
			"p.json:1:75: architectures[1]: unknown architecture \"x86_64\" (want an SCMP_ARCH_* name)"},
		{"architectures and archMap", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`,
			"p.json:1:87: archMap: both architectures and archMap (use one)"},
		{"filter", head + `{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_PTRACE"], "arches": ["x86-64"], "minKernel": "4"}}]}`,
			lines(
				"p.json:1:122: syscalls[0].includes.caps[0]: unknown capability \"CAP_PTRACE\"",
				"p.json:1:148: syscalls[0].includes.arches[0]: unknown architecture \"x86-64\" (want a name such as amd64, arm64 or x32)",
				"p.json:1:172: syscalls[0].includes.minKernel: invalid kernel version \"4\" (want <kernel>.<major>, e.g. 4.8)",
			)},
		{"conflicting rules", head + `{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["write", "read"], "action": "SCMP_ACT_KILL"}]}`,
			"p.json:1:109: syscalls[1].names: read already gets SCMP_ACT_ALLOW from syscalls[0]"},
		{"duplicate field", `{"defaultAction": "SCMP_ACT_ALLOW", "defaultAction": "SCMP_ACT_ERRNO"}`,
			"p.json:1:37: defaultAction: duplicate field (first at line 1)"},
		{"syntax", "{\n\t\"defaultAction\": \"SCMP_ACT_ALLOW\"\n\t\"syscalls\": []\n}",
			"p.json:3:2: invalid JSON: invalid character '\"' after object key:value pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseSeccompProfile("p.json", []byte(tt.src))
			if err == nil {
				t.Fatalf("ParseSeccompProfile succeeded: %+v\nwant error:\n%s", p, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ParseSeccompProfile error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestDockerProfileWithUnknownFields loads a Docker-style profile carrying
// fields sandtrail does not read: every one is named, with its line.
func TestDockerProfileWithUnknownFields(t *testing.T) {
	_, err := LoadSeccompProfile("testdata/profiles/docker-unknown.json")
	want := lines(
		"testdata/profiles/docker-unknown.json:10:18: listenerPath: not supported: sandtrail has no seccomp notification listener",
		"testdata/profiles/docker-unknown.json:15:4: syscalls[0].comments: unknown field (did you mean comment?)",
		"testdata/profiles/docker-unknown.json:20:59: syscalls[1].args[0].valueThree: unknown field (want one of index, op, value, valueTwo)",
		"testdata/profiles/docker-unknown.json:23:2: seccompVersion: unknown field (want one of archMap, architectures, defaultAction, defaultErrnoRet, flags, listenerMetadata, listenerPath, syscalls)",
	)
	if err == nil || err.Error() != want {
		t.Errorf("LoadSeccompProfile error:\n%v\nwant:\n%s", err, want)
	}
}

// TestSeccompCombinations: a profile that parses can still be impossible
// together with the policy.
func TestSeccompCombinations(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		want    string
	}{
		{"execve denied", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO"}]}`,
			"testdata/p.yaml:1:1: controls.seccomp.profile: execve gets SCMP_ACT_ERRNO: the sandbox could never start its program"},
		{"prlimit64 killed", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["prlimit64"], "action": "SCMP_ACT_KILL_PROCESS"}]}`,
			"testdata/p.yaml:1:1: controls.seccomp.profile: prlimit64 gets SCMP_ACT_KILL_PROCESS, but Go's syscall.Exec calls it after the filter is installed (to restore RLIMIT_NOFILE)"},
		{"allow-list without prlimit64", `{"defaultAction": "SCMP_ACT_TRAP", "syscalls": [{"names": ["execve", "setrlimit"], "action": "SCMP_ACT_ALLOW"}]}`,
			"testdata/p.yaml:1:1: controls.seccomp.profile: prlimit64 gets SCMP_ACT_TRAP, but Go's syscall.Exec calls it after the filter is installed (to restore RLIMIT_NOFILE)"},
		{"nothing allowed", `{"defaultAction": "SCMP_ACT_KILL"}`,
			"testdata/p.yaml:1:1: controls.seccomp.profile: every system call would be denied: the default action is SCMP_ACT_KILL and no rule allows anything"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof, err := ParseSeccompProfile("prof.json", []byte(tt.profile))
			if err != nil {
				t.Fatalf("the profile alone is valid, got %v", err)
			}
			// Through a policy built in Go...
			p := &Policy{Name: "x", Seccomp: Seccomp{Profile: "prof.json", Loaded: prof}}
			goWant := strings.TrimPrefix(tt.want, "testdata/p.yaml:1:1: ")
			if err := p.Validate(); err == nil || err.Error() != goWant {
				t.Errorf("Validate() = %v, want %s", err, goWant)
			}
			// ...and through a file (the profile written next to it).
			dir := t.TempDir()
			writeFile(t, dir+"/prof.json", tt.profile)
			_, err = Parse(dir+"/p.yaml", []byte("name: x\ncontrols:\n  seccomp:\n    profile: prof.json\n"))
			fileWant := strings.Replace(tt.want, "testdata/p.yaml:1:1", dir+"/p.yaml:4:14", 1)
			if err == nil || err.Error() != fileWant {
				t.Errorf("Parse error = %v, want %s", err, fileWant)
			}
		})
	}
}
