package confine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/internal/faultinject"
)

// childEnv makes the test binary a child that applies controls to its own
// locked thread, probes what it can still do and prints a childReport as
// JSON on stdout, instead of running tests. Its value is the JSON of a
// childConfig. Restrictions are irreversible, hence a child per scenario;
// tests start it under setpriv(1), faultinject or new namespaces to
// reproduce a host.
const childEnv = "SANDTRAIL_CONFINE_CHILD"

func TestMain(m *testing.M) {
	faultinject.Main()
	if cfg := os.Getenv(childEnv); cfg != "" {
		runtime.LockOSThread() // never unlocked: the child exits from this thread
		if err := childMain(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "confine child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child describes how to start a child.
type child struct {
	cfg   childConfig
	wrap  []string // a command that execs the rest (setpriv ...), or nil
	rules []string // faultinject rules, or nil
	exe   string   // the test binary to run; default os.Executable
	attr  func(*exec.Cmd)
}

// run starts the child and decodes its report.
func (c child) run(t *testing.T) childReport {
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
		t.Fatal("a child is started under setpriv or faultinject, not both")
	case c.rules != nil:
		cmd = faultinject.Command(c.rules, c.exe)
	case c.wrap != nil:
		cmd = exec.Command(c.wrap[0], append(c.wrap[1:], c.exe)...)
		cmd.Env = os.Environ()
	default:
		cmd = exec.Command(c.exe)
		cmd.Env = os.Environ()
	}
	cfg, err := json.Marshal(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The race runtime sleeps a second at exit unless told not to.
	cmd.Env = append(cmd.Env, childEnv+"="+string(cfg), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Dir = "/"
	if c.attr != nil {
		c.attr(cmd)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %q: %v\nstderr:\n%s\nstdout:\n%s", cmd.Args, err, stderr.String(), stdout.String())
	}
	var r childReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode the child's report: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, s := range r.Steps {
		t.Logf("  %s", s)
	}
	t.Logf("  probe: %v", r.Probe)
	t.Logf("  final: %s", r.Final)
	return r
}

// step returns the report's step for control and check.
func (r childReport) step(t *testing.T, control, check string) Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Control == control && s.Check == check {
			return s
		}
	}
	t.Fatalf("no step %s/%s in the child's report", control, check)
	return Step{}
}

func setpriv(t *testing.T, args ...string) []string {
	t.Helper()
	path, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv not found (%v): the test host must have util-linux, which provides it", err)
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
	dir := worldDir(t, 0o755)
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

// worldDir makes a directory under /tmp with the given mode (and a
// reachable parent), removed at the end of the test.
func worldDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "confine-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}
