package probe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/internal/faultinject"
	"github.com/sandtrail/sandtrail/supervisor/probe"
)

// childEnv makes the test binary a child that probes the host, prints the
// Report as JSON on stdout (and as a table on stderr, for failing tests'
// logs) and exits, instead of running tests. Tests start it under
// setpriv(1) or a faultinject wrapper to reproduce degraded hosts.
const childEnv = "SANDTRAIL_PROBE_CHILD"

// TestMain lets the binary act as a faultinject wrapper or a probing
// child, and otherwise runs the tests and fails if any left a goroutine
// behind: the probe promises to start none that outlive it.
func TestMain(m *testing.M) {
	faultinject.Main()
	if os.Getenv(childEnv) != "" {
		if err := printReport(os.Getenv(childEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "probe child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// printReport probes and prints the report. In mode "noexec" it first
// puts its thread (and so every child the probe starts from it) in a
// Landlock domain that denies executing any file.
func printReport(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if mode == "noexec" {
		runtime.LockOSThread() // Probe runs on this thread too; the process exits after
		if err := denyExec(); err != nil {
			return err
		}
	}
	r, err := probe.Probe(ctx)
	if err != nil {
		return err
	}
	if err := r.Table(os.Stderr); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// denyExec restricts the calling thread with a Landlock ruleset that
// handles LANDLOCK_ACCESS_FS_EXECUTE and allows it nowhere.
func denyExec() error {
	attr := unix.LandlockRulesetAttr{Handled_access_fs: unix.LANDLOCK_ACCESS_FS_EXECUTE}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), 8, 0)
	if e != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	defer unix.Close(int(fd))
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); e != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return nil
}
