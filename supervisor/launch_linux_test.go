package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/internal/faultinject"
	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// publicCopy copies the test binary where any uid can execute it (go
// test's build directory is 0700), for runs as uid 65534.
func publicCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandtrail-supervisor-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "supervisor.test")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// testPolicy is the default policy, with the prober's directory readable
// and executable under Landlock.
func testPolicy(prober string) *policy.Policy {
	p := policy.Default()
	dir := filepath.Dir(prober)
	p.Landlock.ReadOnly = append(p.Landlock.ReadOnly, dir)
	p.Landlock.Execute = append(p.Landlock.Execute, dir)
	return p.Resolve()
}

// outcome is what one launch produced, as an inner process reports it.
type outcome struct {
	Result   *supervisor.Result `json:"result"`
	Codes    []string           `json:"codes"`
	Invalid  []string           `json:"invalid"`
	Events   []json.RawMessage  `json:"events"`
	Stdout   string             `json:"stdout"`
	LaunchEr string             `json:"launch_error"`
}

// launchProber runs the prober confined by pol and returns the outcome.
func launchProber(pol *policy.Policy, prober string, signals <-chan os.Signal, argv ...string) outcome {
	rec := &recorder{}
	var stdout bytes.Buffer
	if len(argv) == 0 {
		argv = []string{prober}
	}
	env := append(os.Environ(), "SANDTRAIL_TEST_PROBER=1", "SANDTRAIL_TEST_INNER=",
		"SANDTRAIL_TEST_OUTSIDE="+filepath.Join(os.TempDir(), fmt.Sprintf("sandtrail-outside-%d", os.Getpid())))
	res, err := supervisor.Launch(context.Background(), supervisor.Config{
		Policy: pol, Argv: argv, Env: env, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: os.Stderr,
		Recorder: rec, RunID: "run-test", HelperPath: os.Args[0], Signals: signals,
	})
	o := outcome{Result: res, Codes: rec.codes(), Stdout: stdout.String()}
	if err != nil {
		o.LaunchEr = err.Error()
	}
	for _, e := range rec.errs {
		o.Invalid = append(o.Invalid, e.Error())
	}
	for _, d := range rec.data {
		o.Events = append(o.Events, d)
	}
	return o
}

// inner runs one launch inside a re-executed test binary (under setpriv or
// a fault-injection wrapper) and prints its outcome as JSON.
func inner(mode string) int {
	prober := os.Getenv("SANDTRAIL_TEST_PROBER_PATH")
	pol := testPolicy(prober)
	switch mode {
	case "capbset-best-effort", "capbset-required":
		pol.Namespaces.Mode = policy.Off // rootless Podman: no user namespace to regain CAP_SETPCAP in
		pol.CapabilityBoundingSet.Mode = policy.BestEffort
		if mode == "capbset-required" {
			pol.CapabilityBoundingSet.Mode = policy.Required
		}
	case "landlock-best-effort":
		pol.Landlock.Mode = policy.BestEffort
	case "default":
	default:
		fmt.Fprintln(os.Stderr, "unknown inner mode", mode)
		return 2
	}
	o := launchProber(pol, prober, nil)
	_ = json.NewEncoder(os.Stdout).Encode(o)
	return 0
}

// runInner re-executes the test binary in inner mode, wrapped by wrap
// (e.g. setpriv), and decodes its outcome.
func runInner(t *testing.T, mode string, prober string, wrap ...string) outcome {
	t.Helper()
	argv := append(append([]string{}, wrap...), prober)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SANDTRAIL_TEST_INNER="+mode, "SANDTRAIL_TEST_PROBER_PATH="+prober, "GORACE=atexit_sleep_ms=0")
	return decodeInner(t, cmd)
}

func decodeInner(t *testing.T, cmd *exec.Cmd) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstderr:\n%s", cmd.Args, err, errb.String())
	}
	var o outcome
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		t.Fatalf("decode inner outcome: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	return o
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): this test drops privileges and installs controls for real")
	}
}

func needSetpriv(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv (util-linux) is missing: .ci/run must install util-linux")
	}
	return p
}

func (o outcome) verdicts() map[string]string {
	m := map[string]string{}
	if o.Result != nil {
		for _, c := range o.Result.Controls {
			m[string(c.Control)] = string(c.Verdict)
		}
	}
	return m
}

func (o outcome) prober(t *testing.T) proberReport {
	t.Helper()
	var r proberReport
	if err := json.Unmarshal([]byte(o.Stdout), &r); err != nil {
		t.Fatalf("prober output %q: %v", o.Stdout, err)
	}
	return r
}

// event returns the first recorded event with the code, decoded.
func (o outcome) event(t *testing.T, code string) map[string]any {
	t.Helper()
	for i, c := range o.Codes {
		if c == code {
			var m map[string]any
			if err := json.Unmarshal(o.Events[i], &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s event among %v", code, o.Codes)
	return nil
}

func (o outcome) checkValid(t *testing.T) {
	t.Helper()
	if o.LaunchEr != "" {
		t.Fatalf("Launch: %s", o.LaunchEr)
	}
	for _, e := range o.Invalid {
		t.Errorf("invalid event: %s", e)
	}
}

func TestAllControlsApplied(t *testing.T) {
	requireRoot(t)
	prober := publicCopy(t)
	o := launchProber(testPolicy(prober), prober, nil)
	o.checkValid(t)
	if o.Result.Refused || o.Result.ExitCode != 0 {
		t.Fatalf("refused=%v exit=%d reason=%q", o.Result.Refused, o.Result.ExitCode, o.Result.Reason)
	}
	for c, v := range o.verdicts() {
		if v != "applied" {
			t.Errorf("%s: %s, want applied", c, v)
		}
	}
	if !o.Result.Posture.Secure || o.Result.Posture.Score != 100 {
		t.Errorf("posture %+v, want Secure 100", o.Result.Posture)
	}
	r := o.prober(t)
	for k, want := range map[string]string{"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapInh": "0000000000000000",
		"CapAmb": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"} {
		if r.Status[k] != want {
			t.Errorf("in the sandbox %s = %q, want %q", k, r.Status[k], want)
		}
	}
	if !strings.HasPrefix(r.Status["Uid"], "65534") {
		t.Errorf("in the sandbox Uid = %q, want 65534", r.Status["Uid"])
	}
	for k, want := range map[string]string{"write_outside_landlock": "EACCES", "unshare_user": "EPERM", "keyctl": "EPERM", "capset_sys_admin": "EPERM"} {
		if r.Attempts[k] != want {
			t.Errorf("in the sandbox %s: %s, want %s", k, r.Attempts[k], want)
		}
	}
	want := []string{"NAMESPACES_APPLIED", "CAPBSET_APPLIED", "PRIVDROP_APPLIED", "CAPS_APPLIED", "RLIMITS_APPLIED",
		"COREDUMP_APPLIED", "NNP_APPLIED", "LANDLOCK_APPLIED", "SECCOMP_APPLIED", "POSTURE_SECURE", "LAUNCH", "SETUID", "EXIT"}
	if strings.Join(o.Codes, " ") != strings.Join(want, " ") {
		t.Errorf("events %v\nwant   %v", o.Codes, want)
	}
	caps := o.event(t, "CAPS_APPLIED")
	if s := fmt.Sprint(caps["compliance"]); !strings.Contains(s, "name:effective.effective value:none") {
		t.Errorf("capabilities finding lacks the effective value read back: %s", s)
	}
}

// The reference case: the supervisor lacks CAP_SETPCAP (rootless Podman).
func TestBoundingSetWithoutSetpcap(t *testing.T) {
	requireRoot(t)
	setpriv := needSetpriv(t)
	prober := publicCopy(t)
	wrap := []string{setpriv, "--bounding-set=-setpcap", "--inh-caps=-setpcap"}

	t.Run("best_effort runs degraded and alerts", func(t *testing.T) {
		o := runInner(t, "capbset-best-effort", prober, wrap...)
		o.checkValid(t)
		if o.Result.Refused || o.Result.ExitCode != 0 || !o.Result.Started {
			t.Fatalf("refused=%v exit=%d: %s", o.Result.Refused, o.Result.ExitCode, o.Result.Reason)
		}
		if v := o.verdicts()["capability_bounding_set"]; v != "degraded" {
			t.Fatalf("bounding set %s, want degraded", v)
		}
		cf := o.event(t, "CAPBSET_DEGRADED")
		if cf["class_uid"].(float64) != 2003 || fmt.Sprint(cf["compliance"].(map[string]any)["status_id"]) != "2" {
			t.Errorf("first CAPBSET_DEGRADED is not a Compliance Finding Warning: %v", cf)
		}
		var df map[string]any
		for i, c := range o.Codes {
			var m map[string]any
			_ = json.Unmarshal(o.Events[i], &m)
			if c == "CAPBSET_DEGRADED" && m["class_uid"].(float64) == 2004 {
				df = m
			}
		}
		if df == nil {
			t.Fatal("no Detection Finding for the degraded bounding set")
		}
		if df["status_code"] != "EPERM" || df["severity_id"].(float64) != 4 || df["is_alert"] != true {
			t.Errorf("detection finding: status_code %v severity %v is_alert %v", df["status_code"], df["severity_id"], df["is_alert"])
		}
		if rem := fmt.Sprint(df["remediation"]); !strings.Contains(rem, "CAP_SETPCAP") {
			t.Errorf("remediation %s does not say what to change", rem)
		}
		if msg := fmt.Sprint(df["message"]); !strings.Contains(msg, "no_new_privs set") {
			t.Errorf("detection finding does not name the compensating controls in effect: %s", msg)
		}
		posture := o.event(t, "POSTURE_AT_RISK")
		if posture["security_level_id"].(float64) != 2 {
			t.Errorf("posture %v, want At Risk", posture["security_level_id"])
		}
	})
	t.Run("required is refused before fork", func(t *testing.T) {
		o := runInner(t, "capbset-required", prober, wrap...)
		o.checkValid(t)
		if !o.Result.Refused || o.Result.ExitCode != supervisor.ExitRefused || o.Result.Started || o.Stdout != "" {
			t.Fatalf("refused=%v exit=%d started=%v stdout=%q", o.Result.Refused, o.Result.ExitCode, o.Result.Started, o.Stdout)
		}
		want := "CAPBSET_FAILED CAPBSET_FAILED LAUNCH_REFUSED"
		if got := strings.Join(o.Codes, " "); got != want {
			t.Errorf("events %s, want %s", got, want)
		}
		launch := o.event(t, "LAUNCH_REFUSED")
		if launch["status_id"].(float64) != 2 || launch["type_uid"].(float64) != 100701 {
			t.Errorf("launch event %v", launch)
		}
	})
}

// The AppArmor-shaped case: CAP_SETPCAP held, yet PR_CAPBSET_DROP fails
// with EPERM. The probe must catch it before anything is forked.
func TestBoundingSetDeniedDespiteCapability(t *testing.T) {
	requireRoot(t)
	prober := publicCopy(t)
	cmd := faultinject.Command([]string{"capbset_drop_eperm"}, prober)
	cmd.Env = append(cmd.Env, "SANDTRAIL_TEST_INNER=capbset-required", "SANDTRAIL_TEST_PROBER_PATH="+prober, "GORACE=atexit_sleep_ms=0")
	o := decodeInner(t, cmd)
	o.checkValid(t)
	if !o.Result.Refused || o.Result.Started {
		t.Fatalf("refused=%v started=%v: %s", o.Result.Refused, o.Result.Started, o.Result.Reason)
	}
	df := o.event(t, "CAPBSET_FAILED")
	if s := fmt.Sprint(df); !strings.Contains(s, "refused before fork") {
		t.Errorf("the refusal does not come from the probe: %s", s)
	}
}

func TestLandlockUnavailableDegrades(t *testing.T) {
	requireRoot(t)
	prober := publicCopy(t)
	cmd := faultinject.Command([]string{"landlock_enosys"}, prober)
	cmd.Env = append(cmd.Env, "SANDTRAIL_TEST_INNER=landlock-best-effort", "SANDTRAIL_TEST_PROBER_PATH="+prober, "GORACE=atexit_sleep_ms=0")
	o := decodeInner(t, cmd)
	o.checkValid(t)
	if v := o.verdicts()["landlock"]; v != "degraded" {
		t.Fatalf("landlock %s, want degraded", v)
	}
	for _, c := range o.Codes {
		if c == "LANDLOCK_APPLIED" {
			t.Fatal("Landlock reported applied on a kernel without it")
		}
	}
	var found bool
	for i, c := range o.Codes {
		var m map[string]any
		_ = json.Unmarshal(o.Events[i], &m)
		if c == "LANDLOCK_DEGRADED" && m["class_uid"].(float64) == 2004 {
			found = m["status_code"] == "ENOSYS"
		}
	}
	if !found {
		t.Error("no Detection Finding with status_code ENOSYS for Landlock")
	}
	if r := o.prober(t); r.Attempts["write_outside_landlock"] != "ok" {
		// Without Landlock the write succeeds: the events must not pretend otherwise.
		t.Logf("write outside Landlock paths: %s", r.Attempts["write_outside_landlock"])
	}
}

func TestUnprivilegedDefaultPolicy(t *testing.T) {
	requireRoot(t)
	setpriv := needSetpriv(t)
	prober := publicCopy(t)
	o := runInner(t, "default", prober, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
	o.checkValid(t)
	if o.Result.Refused || o.Result.ExitCode != 0 {
		t.Fatalf("refused=%v exit=%d: %s", o.Result.Refused, o.Result.ExitCode, o.Result.Reason)
	}
	v := o.verdicts()
	for _, c := range []string{"no_new_privs", "landlock", "seccomp", "capabilities", "core_dump"} {
		if v[c] != "applied" {
			t.Errorf("%s: %s, want applied as an unprivileged user", c, v[c])
		}
	}
	if len(o.Codes) < 9 {
		t.Fatalf("events %v", o.Codes)
	}
	// Every control has its Compliance Finding, whatever its verdict.
	for _, prefix := range []string{"NAMESPACES_", "CAPBSET_", "PRIVDROP_", "CAPS_", "RLIMITS_", "COREDUMP_", "NNP_", "LANDLOCK_", "SECCOMP_"} {
		found := false
		for _, c := range o.Codes {
			found = found || strings.HasPrefix(c, prefix)
		}
		if !found {
			t.Errorf("no event for %s*: %v", prefix, o.Codes)
		}
	}
	t.Logf("unprivileged verdicts: %v; posture %s", v, o.Result.Posture)
}

func TestExitStatusAndSignals(t *testing.T) {
	requireRoot(t)
	prober := publicCopy(t)
	pol := testPolicy(prober)
	o := launchProber(pol, prober, nil, "/bin/sh", "-c", "exit 7")
	o.checkValid(t)
	if o.Result.ExitCode != 7 {
		t.Errorf("exit status %d, want 7", o.Result.ExitCode)
	}
	if ev := o.event(t, "EXIT"); ev["exit_code"].(float64) != 7 {
		t.Errorf("Terminate exit_code %v", ev["exit_code"])
	}

	sigs := make(chan os.Signal, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		sigs <- syscall.SIGTERM
	}()
	o = launchProber(pol, prober, sigs, "/bin/sleep", "30")
	o.checkValid(t)
	if o.Result.ExitCode != 128+int(syscall.SIGTERM) || o.Result.Signal != syscall.SIGTERM {
		t.Errorf("exit %d signal %v, want 143 SIGTERM", o.Result.ExitCode, o.Result.Signal)
	}
	if ev := o.event(t, "EXIT"); !strings.Contains(fmt.Sprint(ev["status_detail"]), "SIGTERM") {
		t.Errorf("Terminate status_detail %v", ev["status_detail"])
	}
	var _ = schema.Validate
}
