package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/internal/faultinject"
	"github.com/sandtrail/sandtrail/supervisor/probe"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test compares against a privileged host and reproduces degraded ones from it; CI runs as root")
	}
}

func probeHere(t *testing.T) *probe.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := probe.Probe(ctx)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	return r
}

// child describes how to start a probing child.
type child struct {
	wrap  []string // a command that execs the rest (setpriv ...), or nil
	rules []string // faultinject rules, or nil
	exe   string   // the test binary to run; default os.Executable
	mode  string   // the child's mode (see printReport); default "report"
}

// probeChild runs the test binary as a probing child and decodes its
// Report.
func probeChild(t *testing.T, c child) *probe.Report {
	t.Helper()
	if c.exe == "" {
		var err error
		if c.exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	var cmd *exec.Cmd
	switch {
	case c.rules != nil && c.wrap != nil:
		t.Fatal("probeChild: a child is started under setpriv or faultinject, not both")
	case c.rules != nil:
		cmd = faultinject.Command(c.rules, c.exe)
	case c.wrap != nil:
		cmd = exec.Command(c.wrap[0], append(c.wrap[1:], c.exe)...)
		cmd.Env = os.Environ()
	default:
		cmd = exec.Command(c.exe)
		cmd.Env = os.Environ()
	}
	// The race runtime sleeps a second at exit unless told not to.
	if c.mode == "" {
		c.mode = "report"
	}
	cmd.Env = append(cmd.Env, childEnv+"="+c.mode, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Dir = filepath.Dir(c.exe)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("probing child %q: %v\nstderr:\n%s", cmd.Args, err, stderr.String())
	}
	t.Logf("probing child %q:\n%s", cmd.Args, stderr.String())
	var r probe.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode the child's report: %v\nstdout:\n%s", err, stdout.String())
	}
	return &r
}

func setpriv(t *testing.T, args ...string) []string {
	t.Helper()
	path, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv not found (%v): .ci/run must install util-linux, which provides it", err)
	}
	return append([]string{path}, args...)
}

// worldExecutable copies the test binary where any user can run it: go
// test builds it in a directory only its owner can enter.
func worldExecutable(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, filepath.Base(self))
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// facility returns r's facility name, failing the test if it is missing.
func facility(t *testing.T, r *probe.Report, name string) probe.Facility {
	t.Helper()
	f, ok := r.Facility(name)
	if !ok {
		t.Fatalf("report has no facility %q", name)
	}
	return f
}

// wantFacility checks a facility's status and errno.
func wantFacility(t *testing.T, r *probe.Report, name string, status probe.Status, errno string) {
	t.Helper()
	f := facility(t, r, name)
	if f.Status != status || f.Errno != errno {
		t.Errorf("%s: status %s errno %q (%s), want status %s errno %q", name, f.Status, f.Errno, f.Detail, status, errno)
	}
}

func namespaceFacilities() []string {
	return []string{probe.FacilityPIDNamespace, probe.FacilityMountNamespace, probe.FacilityIPCNamespace,
		probe.FacilityUTSNamespace, probe.FacilityNetNamespace, probe.FacilityCgroupNS}
}

func readProc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestProbeRoot checks a plain root process on this project's machines:
// every facility works, and the answers agree with independent sources
// (/proc files the probe does not decide on).
func TestProbeRoot(t *testing.T) {
	requireRoot(t)
	r := probeHere(t)

	last, err := strconv.Atoi(readProc(t, "/proc/sys/kernel/cap_last_cap"))
	if err != nil || r.CapLastCap != last {
		t.Errorf("CapLastCap = %d, want %d from /proc (%v)", r.CapLastCap, last, err)
	}
	wantFacility(t, r, probe.FacilityBoundingSet, probe.Available, "")
	if r.BoundingSetDrop != probe.DropPermitted {
		t.Errorf("BoundingSetDrop = %s, want %s", r.BoundingSetDrop, probe.DropPermitted)
	}
	key := fmt.Sprintf("prctl(PR_CAPBSET_DROP, %d)", last+1)
	if got := facility(t, r, probe.FacilityBoundingSet).Evidence[key]; got != "EINVAL" {
		t.Errorf("evidence %s = %q, want EINVAL", key, got)
	}

	wantFacility(t, r, probe.FacilityLandlock, probe.Available, "")
	if r.LandlockABI < 7 {
		t.Errorf("LandlockABI = %d, want at least 7 (Linux 6.18 on this project's machines)", r.LandlockABI)
	}
	if r.LandlockErrata == nil {
		t.Errorf("LandlockErrata unknown, want a bitmask: ABI 7 kernels report errata")
	}

	wantFacility(t, r, probe.FacilitySeccomp, probe.Available, "")
	want := strings.Fields(readProc(t, "/proc/sys/kernel/seccomp/actions_avail"))
	if diff := cmp.Diff(r.SeccompActions, want); diff != "" {
		t.Errorf("SeccompActions differ from /proc/sys/kernel/seccomp/actions_avail (-got +want):\n%s", diff)
	}
	for _, a := range []string{"kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"} {
		if !slices.Contains(r.SeccompActions, a) {
			t.Errorf("seccomp action %s missing from %v", a, r.SeccompActions)
		}
	}
	for _, fl := range []string{"tsync", "log"} {
		if !slices.Contains(r.SeccompFilterFlags, fl) {
			t.Errorf("seccomp filter flag %s missing from %v", fl, r.SeccompFilterFlags)
		}
	}

	wantFacility(t, r, probe.FacilityUserNamespaces, probe.Available, "")
	if !r.UserNamespaces.Initial || r.UserNamespaces.Max <= 0 {
		t.Errorf("UserNamespaces = %+v, want the initial namespace and a positive limit", r.UserNamespaces)
	}
	for _, name := range namespaceFacilities() {
		wantFacility(t, r, name, probe.Available, "")
	}
	wantFacility(t, r, probe.FacilityNoNewPrivs, probe.Available, "")

	c := r.Creds
	if c.UID != os.Getuid() || c.EUID != os.Geteuid() || c.GID != os.Getgid() || c.EGID != os.Getegid() {
		t.Errorf("Creds uid %d euid %d gid %d egid %d, want %d %d %d %d", c.UID, c.EUID, c.GID, c.EGID,
			os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
	if !c.CapEff.Has(probe.CapSetpcap) || !c.CapBnd.Has(probe.CapSetpcap) {
		t.Errorf("root: CapEff %s CapBnd %s, want CAP_SETPCAP in both", c.CapEff, c.CapBnd)
	}
	if r.Kernel.Release == "" || r.Hostname == "" || r.Cgroup.Version == "" {
		t.Errorf("host identity incomplete: kernel %+v hostname %q cgroup %+v", r.Kernel, r.Hostname, r.Cgroup)
	}
	if testing.Verbose() {
		var b bytes.Buffer
		if err := r.Table(&b); err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", b.String())
	}
}

// credState is what the probe must not change, per thread, from
// /proc/self/task/*/status, and the process's namespaces.
func credState(t *testing.T) (threads []string, ns map[string]string) {
	t.Helper()
	keep := []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"}
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		var lines []string
		for l := range strings.SplitSeq(string(b), "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok && slices.Contains(keep, name) {
				lines = append(lines, l)
			}
		}
		if s := strings.Join(lines, "\n"); !slices.Contains(threads, s) {
			threads = append(threads, s)
		}
	}
	slices.Sort(threads)
	ns = map[string]string{}
	links, err := filepath.Glob("/proc/self/ns/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if ns[filepath.Base(l)], err = os.Readlink(l); err != nil {
			t.Fatal(err)
		}
	}
	return threads, ns
}

// TestProbeChangesNothing checks the credentials, capability sets
// (CapBnd included), no_new_privs and seccomp state of every thread, and
// the process's namespaces, are the same before and after a probe; and
// that the probe left no child behind.
func TestProbeChangesNothing(t *testing.T) {
	threadsBefore, nsBefore := credState(t)
	first := probeHere(t)
	threadsAfter, nsAfter := credState(t)
	if diff := cmp.Diff(threadsAfter, threadsBefore); diff != "" {
		t.Errorf("thread credentials changed by Probe (-after +before):\n%s", diff)
	}
	if diff := cmp.Diff(nsAfter, nsBefore); diff != "" {
		t.Errorf("namespaces changed by Probe (-after +before):\n%s", diff)
	}
	children, _ := filepath.Glob("/proc/self/task/*/children")
	for _, p := range children {
		if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("%s = %q after Probe, want no child left", p, b)
		}
	}
	// A second probe sees the same host, which it would not if the first
	// had changed anything it reports on.
	if diff := cmp.Diff(probeHere(t), first); diff != "" {
		t.Errorf("second Probe differs from the first (-second +first):\n%s", diff)
	}
}

// TestProbeWithoutSetpcap reproduces a host where CAP_SETPCAP is missing:
// root with CAP_SETPCAP dropped from the bounding set before exec, so it
// is in neither the permitted nor the effective set.
func TestProbeWithoutSetpcap(t *testing.T) {
	requireRoot(t)
	r := probeChild(t, child{wrap: setpriv(t, "--bounding-set=-setpcap", "--inh-caps=-setpcap")})
	wantFacility(t, r, probe.FacilityBoundingSet, probe.Unavailable, "EPERM")
	if r.BoundingSetDrop != probe.DropNoSetpcap {
		t.Errorf("BoundingSetDrop = %s, want %s", r.BoundingSetDrop, probe.DropNoSetpcap)
	}
	c := r.Creds
	if c.EUID != 0 || c.CapEff.Has(probe.CapSetpcap) || c.CapBnd.Has(probe.CapSetpcap) || !c.CapEff.Has(0) {
		t.Errorf("creds euid %d CapEff %s CapBnd %s: want root holding other capabilities but not CAP_SETPCAP", c.EUID, c.CapEff, c.CapBnd)
	}
}

// TestProbeAsNobody runs the probe as uid 65534, which holds no
// capability at all.
func TestProbeAsNobody(t *testing.T) {
	requireRoot(t)
	root := probeHere(t)
	r := probeChild(t, child{
		wrap: setpriv(t, "--reuid=65534", "--regid=65534", "--clear-groups"),
		exe:  worldExecutable(t),
	})
	wantFacility(t, r, probe.FacilityBoundingSet, probe.Unavailable, "EPERM")
	if r.BoundingSetDrop != probe.DropNoSetpcap {
		t.Errorf("BoundingSetDrop = %s, want %s", r.BoundingSetDrop, probe.DropNoSetpcap)
	}
	want := probe.Creds{
		UID: 65534, EUID: 65534, SUID: 65534, FSUID: 65534,
		GID: 65534, EGID: 65534, SGID: 65534, FSGID: 65534, Groups: []int{},
		CapBnd:      root.Creds.CapBnd, // a uid change never touches the bounding set
		SeccompMode: 0, SeccompFilters: root.Creds.SeccompFilters,
	}
	if diff := cmp.Diff(r.Creds, want); diff != "" {
		t.Errorf("creds as nobody (-got +want):\n%s", diff)
	}
	// Without privileges a namespace other than a user namespace can only
	// be created inside a new user namespace.
	user := facility(t, r, probe.FacilityUserNamespaces)
	for _, name := range namespaceFacilities() {
		if user.Status == probe.Available {
			wantFacility(t, r, name, probe.Partial, "EPERM")
		} else if f := facility(t, r, name); f.Status != probe.Unavailable {
			t.Errorf("%s: status %s (%s), want unavailable without user namespaces", name, f.Status, f.Detail)
		}
	}
}

// TestProbeDegraded reproduces degraded hosts with seccomp fault
// injection and checks each is reported with the kernel's errno, while
// the facilities the fault does not touch keep the status they have on
// the plain host.
func TestProbeDegraded(t *testing.T) {
	requireRoot(t)
	base := probeHere(t)
	tests := []struct {
		preset   string
		facility string
		errno    string
		check    func(t *testing.T, r *probe.Report)
	}{
		{faultinject.CapbsetDropEPERM, probe.FacilityBoundingSet, "EPERM", func(t *testing.T, r *probe.Report) {
			if r.BoundingSetDrop != probe.DropDeniedDespiteCap || !r.Creds.CapEff.Has(probe.CapSetpcap) {
				t.Errorf("BoundingSetDrop = %s with CapEff %s, want %s with CAP_SETPCAP held",
					r.BoundingSetDrop, r.Creds.CapEff, probe.DropDeniedDespiteCap)
			}
		}},
		{faultinject.LandlockENOSYS, probe.FacilityLandlock, "ENOSYS", nil},
		{faultinject.LandlockEOPNOTSUPP, probe.FacilityLandlock, "EOPNOTSUPP", nil},
		{faultinject.SeccompENOSYS, probe.FacilitySeccomp, "ENOSYS", nil},
		{faultinject.SeccompEINVAL, probe.FacilitySeccomp, "EINVAL", nil},
		{faultinject.UsernsEPERM, probe.FacilityUserNamespaces, "EPERM", nil},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			t.Parallel()
			r := probeChild(t, child{rules: []string{tt.preset}})
			wantFacility(t, r, tt.facility, probe.Unavailable, tt.errno)
			if tt.facility == probe.FacilityLandlock && (r.LandlockABI != 0 || r.LandlockErrata != nil) {
				t.Errorf("LandlockABI %d errata %v, want 0 and unknown", r.LandlockABI, r.LandlockErrata)
			}
			if tt.facility == probe.FacilitySeccomp && (len(r.SeccompActions) != 0 || len(r.SeccompFilterFlags) != 0) {
				t.Errorf("seccomp actions %v flags %v, want none", r.SeccompActions, r.SeccompFilterFlags)
			}
			if r.Creds.SeccompMode != 2 || r.Creds.SeccompFilters != base.Creds.SeccompFilters+1 {
				t.Errorf("creds seccomp mode %d filters %d, want the wrapper's filter reported (mode 2, %d)",
					r.Creds.SeccompMode, r.Creds.SeccompFilters, base.Creds.SeccompFilters+1)
			}
			for _, f := range base.Facilities {
				if f.Name == tt.facility {
					continue
				}
				if got := facility(t, r, f.Name); got.Status != f.Status {
					t.Errorf("%s: status %s (%s) under %s, want %s as on the plain host", f.Name, got.Status, got.Detail, tt.preset, f.Status)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestProbeExecDenied runs the probe on a thread whose Landlock domain
// denies executing any file, so even a child creating no namespace fails:
// the probe must say it could not tell (unknown), not blame namespaces.
func TestProbeExecDenied(t *testing.T) {
	requireRoot(t)
	base := probeHere(t)
	r := probeChild(t, child{mode: "noexec"})
	for _, name := range append(namespaceFacilities(), probe.FacilityUserNamespaces) {
		f := facility(t, r, name)
		if f.Status != probe.Unknown || !strings.Contains(f.Detail, "EACCES") {
			t.Errorf("%s: status %s (%s), want unknown because the control child got EACCES", name, f.Status, f.Detail)
		}
	}
	key := "clone(0) + execve(" + findTrue(t) + ")"
	if got := facility(t, r, probe.FacilityUserNamespaces).Evidence[key]; got != "EACCES" {
		t.Errorf("evidence %s = %q, want EACCES", key, got)
	}
	for _, name := range []string{probe.FacilityBoundingSet, probe.FacilityLandlock, probe.FacilitySeccomp} {
		if got, want := facility(t, r, name).Status, facility(t, base, name).Status; got != want {
			t.Errorf("%s: status %s in the Landlock domain, want %s as on the plain host", name, got, want)
		}
	}
}

func findTrue(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("this machine has neither /bin/true nor /usr/bin/true for the probe to run")
	return ""
}

func TestProbeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r, err := probe.Probe(ctx); err != context.Canceled {
		t.Errorf("Probe(canceled) = %v, %v; want nil, context.Canceled", r, err)
	}
}
