package faultinject_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/internal/faultinject"
)

// childEnv makes the test binary a child that performs system calls and
// prints what each returned, as a JSON object, instead of running tests.
const childEnv = "FAULTINJECT_TEST_CHILD"

func TestMain(m *testing.M) {
	faultinject.Main()
	if os.Getenv(childEnv) != "" {
		if err := reportSyscalls(os.Stdout, os.Getenv(childEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Keys of the child's report: each call the child makes, spelled as in C.
const (
	kDrop         = "prctl(PR_CAPBSET_DROP, cap_last_cap+1)"
	kDropHigh     = "prctl(1<<32|PR_CAPBSET_DROP, cap_last_cap+1)"
	kRead         = "prctl(PR_CAPBSET_READ, 0)"
	kNNP          = "prctl(PR_GET_NO_NEW_PRIVS)"
	kGetSeccomp   = "prctl(PR_GET_SECCOMP)"
	kSetSeccomp   = "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL)"
	kActionAvail  = "seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &SECCOMP_RET_ERRNO)"
	kLLCreate     = "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)"
	kLLAdd        = "landlock_add_rule(-1, 0, NULL, 0)"
	kLLRestrict   = "landlock_restrict_self(-1, 0)"
	kUnshare0     = "unshare(0)"
	kUnshareUser  = "unshare(CLONE_NEWUSER)"
	kClone3       = "clone3(NULL, 0)"
	kFork         = "fork+exec true"
	kForkUserns   = "fork+exec true with CLONE_NEWUSER"
	kFilters      = "/proc/self/status Seccomp_filters"
	kEnvRulesLeft = "env " + faultinject.EnvRules
)

// reportSyscalls makes each call and writes the outcomes: the errno's name
// on failure, else the return value in decimal. truePath is true(1).
func reportSyscalls(w io.Writer, truePath string) error {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	last, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return err
	}
	out := map[string]string{}
	call := func(key string, nr, a0, a1, a2 uintptr) {
		r, _, e := unix.Syscall6(nr, a0, a1, a2, 0, 0, 0)
		out[key] = result(r, e)
	}
	action := uint32(unix.SECCOMP_RET_ERRNO)
	call(kDrop, unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(last+1), 0)
	call(kDropHigh, unix.SYS_PRCTL, 1<<32|unix.PR_CAPBSET_DROP, uintptr(last+1), 0)
	call(kRead, unix.SYS_PRCTL, unix.PR_CAPBSET_READ, 0, 0)
	call(kNNP, unix.SYS_PRCTL, unix.PR_GET_NO_NEW_PRIVS, 0, 0)
	call(kGetSeccomp, unix.SYS_PRCTL, unix.PR_GET_SECCOMP, 0, 0)
	call(kSetSeccomp, unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, 0)
	call(kActionAvail, unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	call(kLLCreate, unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	call(kLLAdd, unix.SYS_LANDLOCK_ADD_RULE, ^uintptr(0), 0, 0)
	call(kLLRestrict, unix.SYS_LANDLOCK_RESTRICT_SELF, ^uintptr(0), 0, 0)
	call(kUnshare0, unix.SYS_UNSHARE, 0, 0, 0)
	// A Go process has several threads, so a real unshare(CLONE_NEWUSER)
	// fails with EINVAL and changes nothing.
	call(kUnshareUser, unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
	call(kClone3, unix.SYS_CLONE3, 0, 0, 0)
	out[kFork] = forkExec(truePath, nil)
	out[kForkUserns] = forkExec(truePath, &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}},
	})
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp_filters:"); ok {
			out[kFilters] = strings.TrimSpace(v)
		}
	}
	out[kEnvRulesLeft] = "unset"
	if v, ok := os.LookupEnv(faultinject.EnvRules); ok {
		out[kEnvRulesLeft] = "set to " + v
	}
	return json.NewEncoder(w).Encode(out)
}

func result(r uintptr, e syscall.Errno) string {
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP" // not its alias ENOTSUP, which ErrnoName prefers
	}
	if e != 0 {
		return unix.ErrnoName(e)
	}
	return strconv.FormatUint(uint64(r), 10)
}

func forkExec(path string, sys *syscall.SysProcAttr) string {
	pid, err := syscall.ForkExec(path, []string{path}, &syscall.ProcAttr{Sys: sys})
	if err != nil {
		var e syscall.Errno
		if errors.As(err, &e) {
			return unix.ErrnoName(e)
		}
		return err.Error()
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

// runChild runs the test binary as a child reporting its system calls,
// under rules (none: a plain re-exec), and returns the report.
func runChild(t *testing.T, rules ...string) map[string]string {
	t.Helper()
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skipf("this machine has no true(1) to fork+exec: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if len(rules) == 0 {
		cmd = exec.Command(self)
		cmd.Env = os.Environ()
	} else {
		cmd = faultinject.Command(rules, self)
	}
	cmd.Env = append(cmd.Env, childEnv+"="+truePath, quickRaceExit())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child under %q: %v\nstderr:\n%s", rules, err, stderr.String())
	}
	got := map[string]string{}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("child under %q: decode report: %v\nstdout:\n%s", rules, err, stdout.String())
	}
	return got
}

// quickRaceExit returns a GORACE setting that keeps the user's options
// but drops the race runtime's one-second sleep at exit, which would
// otherwise dominate every child's run time.
func quickRaceExit() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing a seccomp filter without no_new_privs needs root (CAP_SYS_ADMIN); CI runs as root")
	}
}

// TestPresets runs a child under each preset and checks that exactly the
// faked calls changed, compared with an unfiltered child: the faked ones
// return the preset's errno, all others (prctl(PR_GET_NO_NEW_PRIVS),
// PR_CAPBSET_READ, unshare(0), a plain fork+exec, ...) are untouched.
func TestPresets(t *testing.T) {
	requireRoot(t)
	base := runChild(t)
	if base[kFilters] != "0" {
		t.Fatalf("test binary already runs under %s seccomp filters: the baseline is not a plain host", base[kFilters])
	}
	// Every filtered child also sees its own filter.
	filtered := map[string]string{kGetSeccomp: "2", kFilters: "1"}
	tests := []struct {
		preset string
		want   map[string]string // calls whose outcome the preset changes
	}{
		{faultinject.CapbsetDropEPERM, map[string]string{kDrop: "EPERM"}},
		{faultinject.LandlockENOSYS, map[string]string{kLLCreate: "ENOSYS", kLLAdd: "ENOSYS", kLLRestrict: "ENOSYS"}},
		{faultinject.LandlockEOPNOTSUPP, map[string]string{kLLCreate: "EOPNOTSUPP", kLLAdd: "EOPNOTSUPP", kLLRestrict: "EOPNOTSUPP"}},
		{faultinject.SeccompENOSYS, map[string]string{kActionAvail: "ENOSYS", kSetSeccomp: "EINVAL", kGetSeccomp: "EINVAL"}},
		{faultinject.SeccompEINVAL, map[string]string{kActionAvail: "EINVAL", kSetSeccomp: "EINVAL"}},
		{faultinject.UsernsEPERM, map[string]string{kUnshareUser: "EPERM", kForkUserns: "EPERM", kClone3: "ENOSYS"}},
	}
	if len(tests) != len(faultinject.Presets()) {
		t.Fatalf("tests cover %d presets, Presets() has %d", len(tests), len(faultinject.Presets()))
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			t.Parallel()
			got := runChild(t, tt.preset)
			want := maps.Clone(base)
			maps.Copy(want, filtered)
			maps.Copy(want, tt.want)
			for k, v := range tt.want {
				if base[k] == v {
					t.Errorf("%s: unfiltered host already returns %s: the test proves nothing", k, v)
				}
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("outcomes under %s (-got +want):\n%s", tt.preset, diff)
			}
		})
	}
}

// TestArg0AllBits proves the filter compares all 64 bits of arg0: a rule
// for 1<<32|PR_CAPBSET_DROP catches only that call, although the kernel,
// whose prctl takes an int, sees both as PR_CAPBSET_DROP. It also proves
// raw rules and presets combine.
func TestArg0AllBits(t *testing.T) {
	requireRoot(t)
	base := runChild(t)
	rule := faultinject.Rule{Syscall: unix.SYS_PRCTL, Arg0: new(uint64(1<<32 | unix.PR_CAPBSET_DROP)), Errno: unix.EACCES}
	got := runChild(t, rule.String(), faultinject.LandlockENOSYS)
	if got[kDropHigh] != "EACCES" {
		t.Errorf("%s = %s, want EACCES from the rule %s", kDropHigh, got[kDropHigh], rule)
	}
	if got[kDrop] != base[kDrop] {
		t.Errorf("%s = %s, want %s as unfiltered: the rule must not match arg0 %#x", kDrop, got[kDrop], base[kDrop], unix.PR_CAPBSET_DROP)
	}
	if got[kLLCreate] != "ENOSYS" {
		t.Errorf("%s = %s, want ENOSYS from the preset", kLLCreate, got[kLLCreate])
	}
}

// TestEnvRulesRemoved checks the target does not inherit FAULTINJECT_RULES
// (it would become a wrapper again).
func TestEnvRulesRemoved(t *testing.T) {
	requireRoot(t)
	if got := runChild(t, faultinject.CapbsetDropEPERM)[kEnvRulesLeft]; got != "unset" {
		t.Errorf("target environment: %s is %s, want unset", faultinject.EnvRules, got)
	}
}

// TestWrapperFailures checks the wrapper's exit statuses and messages.
func TestWrapperFailures(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		rules    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown preset", "no_such_preset", []string{"--", "true"}, 125, `unknown preset "no_such_preset"`},
		{"no separator", faultinject.CapbsetDropEPERM, []string{"true"}, 125, `want arguments "-- target [args...]"`},
		{"no target", faultinject.CapbsetDropEPERM, []string{"--"}, 125, `want arguments`},
		{"target not found", faultinject.CapbsetDropEPERM, []string{"--", "/nonexistent/sandtrail-target"}, 127, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(self, tt.args...)
			cmd.Env = append(os.Environ(), faultinject.EnvRules+"="+tt.rules)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tt.wantCode {
				t.Fatalf("wrapper: %v, want exit status %d; stderr:\n%s", err, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

func TestCommandRejectsBadRules(t *testing.T) {
	cmd := faultinject.Command([]string{"landlock_enosys", "157/x=EPERM"}, "true")
	if err := cmd.Start(); err == nil || !strings.Contains(err.Error(), `rule "157/x=EPERM"`) {
		cmd.Wait()
		t.Fatalf("Start = %v, want the rule's parse error", err)
	}
}

func TestParse(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		spec    string
		want    []faultinject.Rule
		wantErr string
	}{
		{spec: "157=EPERM", want: []faultinject.Rule{{Syscall: 157, Errno: unix.EPERM}}},
		{spec: "157/0x18=1", want: []faultinject.Rule{{Syscall: 157, Arg0: u(0x18), Errno: unix.EPERM}}},
		{spec: " 272/0x10000000&0x10000000=EPERM ,, 435=ENOSYS", want: []faultinject.Rule{
			{Syscall: 272, Arg0: u(0x10000000), Arg0Mask: 0x10000000, Errno: unix.EPERM},
			{Syscall: 435, Errno: unix.ENOSYS},
		}},
		{spec: faultinject.CapbsetDropEPERM, want: []faultinject.Rule{{Syscall: unix.SYS_PRCTL, Arg0: u(unix.PR_CAPBSET_DROP), Errno: unix.EPERM}}},
		{spec: "", wantErr: "no rules"},
		{spec: "157=ENOTANERRNO", wantErr: `unknown errno "ENOTANERRNO"`},
		{spec: "157=0", wantErr: "unknown errno"},
		{spec: "157=4096", wantErr: "unknown errno"},
		{spec: "prctl=EPERM", wantErr: "syscall number"},
		{spec: "157/0x18&zz=EPERM", wantErr: "mask"},
		{spec: "capbset_drop", wantErr: "unknown preset"},
	}
	for _, tt := range tests {
		got, err := faultinject.Parse(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("Parse(%q) (-got +want):\n%s", tt.spec, diff)
		}
	}
}

// TestStringRoundTrip checks every preset rule survives String and Parse,
// which is how Command passes raw rules to the wrapper.
func TestStringRoundTrip(t *testing.T) {
	for _, p := range faultinject.Presets() {
		rules, err := faultinject.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			back, err := faultinject.Parse(r.String())
			if err != nil {
				t.Fatalf("Parse(%q): %v", r, err)
			}
			if diff := cmp.Diff(back, []faultinject.Rule{r}); diff != "" {
				t.Errorf("round trip of %s (-got +want):\n%s", r, diff)
			}
		}
	}
}
