package confine

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/internal/faultinject"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tests switch uids, create namespaces and drop capabilities for real")
	}
}

// allSteps is every step of the default policy with namespaces on, in
// order: control/check.
var allSteps = []string{
	"namespaces/user", "namespaces/pid", "namespaces/mount", "namespaces/ipc", "namespaces/uts",
	"namespaces/net", "namespaces/cgroup", "capability_bounding_set/",
	"privilege_drop/setgroups", "privilege_drop/setgid", "privilege_drop/setuid",
	"capabilities/effective", "capabilities/permitted", "capabilities/inheritable", "capabilities/ambient",
	"rlimits/nofile", "core_dump/", "no_new_privs/", "landlock/", "seccomp/",
}

func outcomes(steps []Step) map[string]Outcome {
	out := map[string]Outcome{}
	for _, s := range steps {
		out[s.Control+"/"+s.Check] = s.Outcome
	}
	return out
}

func names(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Control+"/"+s.Check)
	}
	return out
}

// confinedProbe is what a thread under the whole default policy (with a
// read-write directory) can and cannot do.
var confinedProbe = map[string]string{
	"write_outside":    "EACCES", // Landlock: /tmp is not read-write
	"write_inside":     "ok",
	"keyctl":           "EPERM", // seccomp
	"unshare_user":     "EPERM", // seccomp
	"clone3":           "ENOSYS",
	"capset_sys_admin": "EPERM", // nothing left to regain it from
	"setuid_0":         "EPERM",
}

func checkConfinedFinal(t *testing.T, r childReport) {
	t.Helper()
	if diff := cmp.Diff(confinedProbe, r.Probe); diff != "" {
		t.Errorf("probe after the controls (-want +got):\n%s", diff)
	}
	f := r.Final
	if f.CapEff != 0 || f.CapPrm != 0 || f.CapInh != 0 || f.CapAmb != 0 || !f.NoNewPrivs || f.Seccomp != 2 || f.UID != 65534 || f.GID != 65534 {
		t.Errorf("final status %s: want uid and gid 65534, no capabilities, NoNewPrivs 1, Seccomp 2", f)
	}
}

// TestApplyAllAsRoot applies every control in order in new namespaces
// (user namespace with an identity map, so that root and 65534 exist)
// and checks each step, then what the thread can still do.
func TestApplyAllAsRoot(t *testing.T) {
	requireRoot(t)
	dir := worldDir(t, 0o777)
	r := child{
		cfg: childConfig{Scenario: "all", RWDir: dir, Parent: NamespaceInodes()},
		attr: func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
					syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWNET | syscall.CLONE_NEWCGROUP,
				UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
				GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}},
				GidMappingsEnableSetgroups: true,
			}
		},
	}.run(t)
	if diff := cmp.Diff(allSteps, names(r.Steps)); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
	for _, s := range r.Steps {
		if s.Outcome != Applied || s.Errno != "" {
			t.Errorf("%s: want applied without errno", s)
		}
		if s.Effective == "" || s.Requested == "" {
			t.Errorf("%s: empty requested or effective", s)
		}
	}
	if s := r.step(t, "capability_bounding_set", ""); s.Evidence["CapBnd"] != hex64(r.Final.CapBnd) || r.Final.CapBnd != 0 {
		t.Errorf("bounding set: step says %s, status says %s", s.Evidence["CapBnd"], hex64(r.Final.CapBnd))
	}
	if s := r.step(t, "seccomp", ""); s.Evidence["Seccomp"] != "2" {
		t.Errorf("seccomp evidence %v", s.Evidence)
	}
	if s := r.step(t, "landlock", ""); !strings.Contains(s.Effective, "enforced (open / denied: EACCES)") {
		t.Errorf("landlock effective %q: want the EACCES proof", s.Effective)
	}
	checkConfinedFinal(t, r)
}

// TestStrictLandlock: with a Landlock policy that does not allow /proc,
// the seccomp filter installed after it is still read back.
func TestStrictLandlock(t *testing.T) {
	requireRoot(t)
	dir := worldDir(t, 0o777)
	r := child{cfg: childConfig{Scenario: "all", RWDir: dir, Strict: true}}.run(t)
	for _, s := range r.Steps {
		if s.Outcome != Applied && !strings.HasPrefix(s.Control, "namespaces") {
			t.Errorf("%s: want applied", s)
		}
	}
	checkConfinedFinal(t, r)
}

// TestBoundingSetRefused runs every control where dropping from the
// bounding set is refused: CAP_SETPCAP removed by setpriv, or held but
// refused as an LSM would. The bounding-set step fails with EPERM and
// says what is left; no other step changes its story.
func TestBoundingSetRefused(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		name  string
		wrap  []string
		rules []string
	}{
		{"setpriv-no-setpcap", setpriv(t, "--bounding-set=-setpcap", "--inh-caps=-setpcap"), nil},
		{"lsm-refuses", nil, []string{faultinject.CapbsetDropEPERM}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := worldDir(t, 0o777)
			r := child{cfg: childConfig{Scenario: "all", RWDir: dir}, wrap: tt.wrap, rules: tt.rules}.run(t)
			bs := r.step(t, "capability_bounding_set", "")
			if bs.Outcome != Failed || bs.Errno != "EPERM" {
				t.Errorf("bounding set: %s; want failed with EPERM", bs)
			}
			if bs.Evidence["CapBnd"] != hex64(r.Final.CapBnd) || r.Final.CapBnd == 0 {
				t.Errorf("bounding set evidence %s, final CapBnd %s: want the same, non-empty", bs.Evidence["CapBnd"], hex64(r.Final.CapBnd))
			}
			if !strings.Contains(bs.Effective, hex64(r.Final.CapBnd)) {
				t.Errorf("bounding set effective %q does not show CapBnd %s", bs.Effective, hex64(r.Final.CapBnd))
			}
			for _, s := range r.Steps {
				want := Applied
				if strings.HasPrefix(s.Control, "namespaces") {
					want = Skipped
				}
				if s.Control != "capability_bounding_set" && s.Outcome != want {
					t.Errorf("%s: want %s", s, want)
				}
			}
			checkConfinedFinal(t, r)
		})
	}
}

// TestApplyAsNobody runs every control as uid 65534 with no capabilities.
func TestApplyAsNobody(t *testing.T) {
	requireRoot(t)
	dir := worldDir(t, 0o777)
	r := child{
		cfg:  childConfig{Scenario: "all", RWDir: dir, User: "1000"},
		wrap: setpriv(t, "--reuid=65534", "--regid=65534", "--clear-groups"),
		exe:  worldExecutable(t),
	}.run(t)
	want := map[string]Outcome{
		"capability_bounding_set/": Failed, "privilege_drop/setgroups": Applied,
		"privilege_drop/setgid": Failed, "privilege_drop/setuid": Failed,
		"capabilities/effective": Applied, "capabilities/permitted": Applied,
		"capabilities/inheritable": Applied, "capabilities/ambient": Applied,
		"rlimits/nofile": Applied, "core_dump/": Applied, "no_new_privs/": Applied,
		"landlock/": Applied, "seccomp/": Applied,
	}
	got := outcomes(r.Steps)
	for _, k := range []string{"user", "pid", "mount", "ipc", "uts", "net", "cgroup"} {
		if got["namespaces/"+k] != Skipped {
			t.Errorf("namespaces/%s: %s, want skipped", k, got["namespaces/"+k])
		}
		delete(got, "namespaces/"+k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	for _, c := range []string{"setgid", "setuid"} {
		if s := r.step(t, "privilege_drop", c); s.Errno != "EPERM" || !strings.Contains(s.Effective, "65534") {
			t.Errorf("%s: want EPERM and the ids still 65534", s)
		}
	}
	if s := r.step(t, "capability_bounding_set", ""); s.Errno != "EPERM" {
		t.Errorf("%s: want EPERM", s)
	}
	checkConfinedFinal(t, r)
}

// TestLandlockUnavailable: on a kernel without Landlock (or with it
// disabled at boot), the Landlock step fails with the kernel's errno,
// whatever the mode, and nothing is enforced.
func TestLandlockUnavailable(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		preset, errno string
		mode          policy.Mode
	}{
		{faultinject.LandlockENOSYS, "ENOSYS", policy.Required},
		{faultinject.LandlockENOSYS, "ENOSYS", policy.BestEffort},
		{faultinject.LandlockEOPNOTSUPP, "EOPNOTSUPP", policy.BestEffort},
	} {
		t.Run(tt.preset+"-"+string(tt.mode), func(t *testing.T) {
			r := child{cfg: childConfig{Scenario: "landlock", Mode: tt.mode}, rules: []string{tt.preset}}.run(t)
			prep := r.Steps[1]
			if prep.Control != "landlock" || prep.Outcome != Failed || prep.Errno != tt.errno || prep.Effective != "Landlock unavailable" {
				t.Errorf("prepare: %s; want failed with %s", prep, tt.errno)
			}
			if restrict := r.Steps[2]; restrict.Outcome != Failed {
				t.Errorf("restrict: %s; want failed", restrict)
			}
			if r.Probe["write_outside"] != "ok" {
				t.Errorf("write outside = %s: the child is root without Landlock, it should succeed", r.Probe["write_outside"])
			}
		})
	}
}

// TestLandlockWithoutNoNewPrivs: an unprivileged thread without
// no_new_privs cannot restrict itself: EPERM.
func TestLandlockWithoutNoNewPrivs(t *testing.T) {
	requireRoot(t)
	r := child{
		cfg:  childConfig{Scenario: "landlock", NoNNP: true},
		wrap: setpriv(t, "--reuid=65534", "--regid=65534", "--clear-groups"),
		exe:  worldExecutable(t),
	}.run(t)
	if prep := r.Steps[0]; prep.Outcome != Applied {
		t.Errorf("prepare: %s; want applied (building a ruleset needs no privilege)", prep)
	}
	if s := r.Steps[1]; s.Outcome != Failed || s.Errno != "EPERM" || !strings.Contains(s.Detail, "no_new_privs") {
		t.Errorf("restrict: %s; want failed with EPERM, naming no_new_privs", s)
	}
}

// TestSeccompUnavailable: a kernel refusing seccomp gives a failed step.
func TestSeccompUnavailable(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		preset, errno string
		log           bool
	}{
		{faultinject.SeccompENOSYS, "ENOSYS", false},
		{faultinject.SeccompEINVAL, "EINVAL", true},
	} {
		t.Run(tt.preset, func(t *testing.T) {
			r := child{cfg: childConfig{Scenario: "seccomp", Log: tt.log}, rules: []string{tt.preset}}.run(t)
			s := r.step(t, "seccomp", "")
			if s.Outcome != Failed || s.Errno != tt.errno {
				t.Errorf("%s: want failed with %s", s, tt.errno)
			}
			// The wrapper's own filter is the only one.
			if r.Final.SeccompFilters != 1 || s.Evidence["Seccomp_filters"] != s.Evidence["Seccomp_filters_before"] {
				t.Errorf("final status %s, evidence %v: want no filter added", r.Final, s.Evidence)
			}
		})
	}
}

// TestSeccompLogDenials installs the default filter with
// SECCOMP_FILTER_FLAG_LOG.
func TestSeccompLogDenials(t *testing.T) {
	requireRoot(t)
	r := child{cfg: childConfig{Scenario: "seccomp", Log: true}}.run(t)
	s := r.step(t, "seccomp", "")
	if s.Outcome != Applied || !strings.Contains(s.Requested, "log denials") || !strings.Contains(s.Evidence["syscall"], "0x2") {
		t.Errorf("%s (%v): want applied with SECCOMP_FILTER_FLAG_LOG", s, s.Evidence)
	}
	if r.Probe["keyctl"] != "EPERM" || r.Probe["clone3"] != "ENOSYS" || r.Probe["unshare_user"] != "EPERM" {
		t.Errorf("probe %v: the default profile is not in force", r.Probe)
	}
}

// TestSeccompOCIProfile installs testdata/seccomp/small.json and checks
// its rules on the real kernel.
func TestSeccompOCIProfile(t *testing.T) {
	requireRoot(t)
	path, err := filepath.Abs(filepath.Join("testdata", "seccomp", "small.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := child{cfg: childConfig{Scenario: "oci", Profile: path}}.run(t)
	s := r.step(t, "seccomp", "")
	if s.Outcome != Applied || !strings.HasPrefix(s.Requested, "profile small.json (8 rules, default SCMP_ACT_ERRNO)") {
		t.Errorf("%s: want applied", s)
	}
	want := map[string]string{
		"getpriority_self": "ok", "getpriority_pgrp": "EDOM", "uname": "ENODATA",
		"getcwd": "EPERM", "socket_unix": "ok", "socket_inet": "EPERM",
	}
	if diff := cmp.Diff(want, r.Probe); diff != "" {
		t.Errorf("probe (-want +got):\n%s", diff)
	}
	if r.Final.Seccomp != 2 || r.Final.SeccompFilters != 1 {
		t.Errorf("final status %s: want Seccomp 2 with one filter", r.Final)
	}
}

// TestRlimits: a hard limit above the current one cannot be raised here
// (no CAP_SYS_RESOURCE): Partial with EPERM, the soft limit as asked.
func TestRlimits(t *testing.T) {
	requireRoot(t)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max == unix.RLIM_INFINITY {
		t.Skip("the hard limit of nofile is unlimited here: there is nothing above it to ask for")
	}
	r := child{cfg: childConfig{Scenario: "rlimits"}}.run(t)
	nofile := r.step(t, "rlimits", "nofile")
	if nofile.Outcome != Partial || nofile.Errno != "EPERM" || nofile.Effective != limitString(512, cur.Max) {
		t.Errorf("%s: want partial with EPERM, effective %s", nofile, limitString(512, cur.Max))
	}
	if s := r.step(t, "rlimits", "fsize"); s.Outcome != Applied || s.Effective != "soft 1073741824 hard 2147483648" {
		t.Errorf("%s: want applied", s)
	}
	if s := r.step(t, "core_dump", ""); s.Outcome != Applied || s.Evidence["dumpable"] != "0" || s.Evidence["RLIMIT_CORE"] != "soft 0 hard 0" {
		t.Errorf("%s: want applied", s)
	}
}

// TestKeepCapability keeps CAP_NET_BIND_SERVICE through the switch to
// 65534 (PR_SET_KEEPCAPS) and raises it in all four sets, ambient
// included, so that it survives execve.
func TestKeepCapability(t *testing.T) {
	requireRoot(t)
	const bind = policy.Capability(unix.CAP_NET_BIND_SERVICE)
	dir := worldDir(t, 0o777)
	r := child{cfg: childConfig{Scenario: "all", RWDir: dir, Keep: []policy.Capability{bind}}}.run(t)
	for _, s := range r.Steps {
		if s.Outcome != Applied && !strings.HasPrefix(s.Control, "namespaces") {
			t.Errorf("%s: want applied", s)
		}
	}
	for _, set := range capSets {
		if s := r.step(t, "capabilities", set); s.Effective != "CAP_NET_BIND_SERVICE" || s.Requested != "keep CAP_NET_BIND_SERVICE" {
			t.Errorf("%s: want CAP_NET_BIND_SERVICE kept", s)
		}
	}
	const m = 1 << unix.CAP_NET_BIND_SERVICE
	f := r.Final
	if f.CapEff != m || f.CapPrm != m || f.CapInh != m || f.CapAmb != m || f.CapBnd != m || f.UID != 65534 {
		t.Errorf("final status %s: want uid 65534 with CAP_NET_BIND_SERVICE (%x) in every set", f, m)
	}
	if r.Probe["capset_sys_admin"] != "EPERM" || r.Probe["write_outside"] != "EACCES" {
		t.Errorf("probe %v", r.Probe)
	}
}

// TestKeepCapabilityNotHeld: a capability the thread does not hold cannot
// be kept: each set is Partial and says so.
func TestKeepCapabilityNotHeld(t *testing.T) {
	requireRoot(t)
	r := child{
		cfg:  childConfig{Scenario: "caps", Keep: []policy.Capability{unix.CAP_NET_BIND_SERVICE}},
		wrap: setpriv(t, "--reuid=65534", "--regid=65534", "--clear-groups"),
		exe:  worldExecutable(t),
	}.run(t)
	for _, set := range capSets {
		s := r.step(t, "capabilities", set)
		if s.Outcome != Partial || s.Effective != "none" || !strings.Contains(s.Detail, "cannot be gained") {
			t.Errorf("%s: want partial, none held", s)
		}
	}
}

func TestVerifyNamespacesInSupervisor(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all := policy.Default().Namespaces
	for _, s := range VerifyNamespaces(all, NamespaceInodes()) {
		if s.Outcome != Failed || !strings.Contains(s.Detail, "still in the supervisor's") || !strings.HasSuffix(s.Effective, "(the supervisor's)") {
			t.Errorf("%s: want failed, same namespace as the parent", s)
		}
	}
	for _, s := range VerifyNamespaces(all, nil) {
		if s.Outcome != Failed || !strings.Contains(s.Detail, "was not given") {
			t.Errorf("%s: want failed, nothing to compare with", s)
		}
	}
	some := policy.Namespaces{Mode: policy.BestEffort, Net: true}
	for _, s := range VerifyNamespaces(some, map[string]uint64{"net": 1}) {
		want := Skipped
		if s.Check == "net" {
			want = Applied // inode 1 is nobody's namespace
		}
		if s.Outcome != want {
			t.Errorf("%s: want %s", s, want)
		}
	}
	for _, s := range VerifyNamespaces(policy.Namespaces{Mode: policy.Off, User: true}, nil) {
		if s.Outcome != Skipped {
			t.Errorf("%s: want skipped (mode off)", s)
		}
	}
}

func TestReadStatus(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != os.Getuid() || st.EGID != os.Getegid() || st.Seccomp < 0 || st.SeccompFilters < 0 {
		t.Errorf("ReadStatus: %s", st)
	}
}

func TestResolveIDs(t *testing.T) {
	pd := func(user, group string, groups ...string) policy.PrivilegeDrop {
		return policy.PrivilegeDrop{Mode: policy.Required, User: user, Group: group, SupplementaryGroups: groups, WhenUnprivileged: policy.UnprivilegedSwitch}
	}
	tests := []struct {
		name          string
		p             policy.PrivilegeDrop
		euid          int
		uid, gid      int
		groups        []int
		switchIDs     bool
		wantErrSubstr string
	}{
		{name: "numeric", p: pd("65534", "65534"), uid: 65534, gid: 65534, groups: []int{}, switchIDs: true},
		{name: "names", p: pd("nobody", "nogroup", "nogroup", "123"), uid: 65534, gid: 65534, groups: []int{65534, 123}, switchIDs: true},
		{name: "unknown user", p: pd("no-such-user-here", "65534"), wantErrSubstr: `resolve user "no-such-user-here"`},
		{name: "root by number", p: pd("0", "65534"), wantErrSubstr: "is root"},
		{name: "root by name", p: pd("65534", "root"), wantErrSubstr: `group "root" is root`},
		{name: "unprivileged switch", p: pd("1000", "1000"), euid: 1000, uid: 1000, gid: 1000, groups: []int{}, switchIDs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, gid, groups, sw, err := ResolveIDs(tt.p, tt.euid)
			if tt.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErrSubstr)
				}
				return
			}
			if err != nil || uid != tt.uid || gid != tt.gid || !cmp.Equal(groups, tt.groups) || sw != tt.switchIDs {
				t.Errorf("got %d %d %v %t %v, want %d %d %v %t", uid, gid, groups, sw, err, tt.uid, tt.gid, tt.groups, tt.switchIDs)
			}
		})
	}
	// An unprivileged supervisor that keeps its ids.
	keep := policy.Default().PrivilegeDrop
	uid, gid, _, sw, err := ResolveIDs(keep, 4242)
	if err != nil || uid != 4242 || gid != os.Getegid() || sw {
		t.Errorf("keep: got %d %d %t %v, want 4242, the current gid, false", uid, gid, sw, err)
	}
}
