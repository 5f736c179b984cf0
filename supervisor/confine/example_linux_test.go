package confine_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// Example is the helper's sequence: in its new namespaces, on one locked
// thread, every control in order, each step reported, then exec. parent
// holds the supervisor's confine.NamespaceInodes, and status is the pipe
// to the supervisor (close-on-exec: its closing says exec happened).
func Example() {
	var parent map[string]uint64
	var status *os.File
	p := policy.Default()

	runtime.LockOSThread() // never unlocked: this thread execs the workload
	report := func(steps ...confine.Step) {
		for _, s := range steps {
			json.NewEncoder(status).Encode(s)
		}
	}
	report(confine.VerifyNamespaces(p.Namespaces, parent)...)
	report(confine.DropBoundingSet(p.CapabilityBoundingSet))
	ruleset, prepared := confine.PrepareLandlock(p.Landlock) // while privileged
	filter, err := confine.CompileSeccomp(p.Seccomp, nil, p.CapabilityBoundingSet.Keep...)
	if err != nil {
		fmt.Fprintln(status, err)
		os.Exit(1)
	}
	st, err := confine.ReadStatus()
	if err != nil {
		fmt.Fprintln(status, err)
		os.Exit(1)
	}
	uid, gid, groups, _, err := confine.ResolveIDs(p.PrivilegeDrop, st.EUID)
	if err != nil {
		fmt.Fprintln(status, err)
		os.Exit(1)
	}
	report(confine.DropPrivileges(p.PrivilegeDrop, uid, gid, groups, p.Capabilities.Keep...)...)
	report(confine.SetCapabilities(p.Capabilities, p.CapabilityBoundingSet)...)
	report(confine.SetRlimits(p.Rlimits)...)
	report(confine.DisableCoreDump(p.CoreDump))
	report(confine.SetNoNewPrivs(p.NoNewPrivs))
	if ruleset != nil {
		report(ruleset.Restrict())
	} else {
		report(prepared)
	}
	report(filter.Install(p.Seccomp.LogDenials))
	// The supervisor decides, from the steps and each control's mode,
	// whether the workload may start; then the helper execs it.
	err = syscall.Exec("/usr/bin/true", []string{"true"}, nil)
	fmt.Fprintln(status, err)
	os.Exit(1)
}

func ExampleSeccompFilter_Eval() {
	f, err := confine.CompileSeccomp(policy.Default().Seccomp, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct {
		name  string
		flags uint64
	}{{"unshare", unix.CLONE_NEWUSER}, {"clone", unix.CLONE_NEWUSER}, {"clone", 0}, {"clone3", 0}} {
		ret, err := f.Eval(c.name, [6]uint64{c.flags})
		fmt.Printf("%s(%#x): %#x %v\n", c.name, c.flags, ret, err)
	}
	// Output:
	// unshare(0x10000000): 0x50001 <nil>
	// clone(0x10000000): 0x50001 <nil>
	// clone(0x0): 0x7fff0000 <nil>
	// clone3(0x0): 0x50026 <nil>
}
