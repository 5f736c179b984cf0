package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// HelperMain is the helper process: it applies the plan's controls on one
// locked OS thread, reports every step to the parent, waits for the
// parent's decision and then execs the target (or exits). It never
// returns. cmd/sandtrail calls it for HelperCommand.
func HelperMain() {
	runtime.LockOSThread()
	status := os.NewFile(statusFD, "status")
	planIn := os.NewFile(planFD, "plan")
	if status == nil || planIn == nil {
		fmt.Fprintln(os.Stderr, "sandtrail: the helper is started only by sandtrail run")
		os.Exit(125)
	}
	unix.CloseOnExec(statusFD)
	unix.CloseOnExec(planFD)
	h := &helper{out: json.NewEncoder(status), in: bufio.NewReader(planIn)}
	code := h.run()
	os.Exit(code)
}

type helper struct {
	out *json.Encoder
	in  *bufio.Reader
}

func (h *helper) send(m message) {
	if err := h.out.Encode(m); err != nil {
		os.Exit(125) // the parent is gone: nothing may run unrecorded
	}
}

func (h *helper) fatal(format string, args ...any) int {
	h.send(message{Fatal: fmt.Sprintf(format, args...)})
	return 125
}

func (h *helper) step(s confine.Step) { h.send(message{Step: &s}) }

func (h *helper) steps(ss []confine.Step) {
	for _, s := range ss {
		h.step(s)
	}
}

func skipped(c policy.Control) confine.Step {
	return confine.Step{Control: string(c), Outcome: confine.Skipped, Detail: "mode off: not applied"}
}

func (h *helper) run() int {
	line, err := h.in.ReadBytes('\n')
	if err != nil {
		return h.fatal("read plan: %v", err)
	}
	var p plan
	if err := json.Unmarshal(line, &p); err != nil {
		return h.fatal("decode plan: %v", err)
	}
	pol := p.Policy
	on := func(c policy.Control) bool { return pol.Mode(c) != policy.Off }

	// Namespaces were created by the parent's clone flags; prove it.
	switch {
	case !on(policy.ControlNamespaces):
		h.step(skipped(policy.ControlNamespaces))
	case p.NamespaceErr != "":
		for _, k := range pol.Namespaces.Kinds() {
			h.step(confine.Step{Control: string(policy.ControlNamespaces), Check: k, Requested: "new " + k + " namespace",
				Effective: "the supervisor's " + k + " namespace", Outcome: confine.Failed, Errno: p.NamespaceErr,
				Detail: "clone with the namespace flags failed; the sandbox shares the supervisor's namespaces"})
		}
	default:
		h.steps(confine.VerifyNamespaces(pol.Namespaces, p.ParentNS))
	}

	// Landlock path fds are opened while still privileged.
	var ruleset *confine.LandlockRuleset
	var landlockStep *confine.Step
	if on(policy.ControlLandlock) {
		rs, st := confine.PrepareLandlock(pol.Landlock)
		ruleset = rs
		if rs == nil {
			landlockStep = &st
		}
	}
	// The seccomp filter is compiled before any restriction.
	var filter *confine.SeccompFilter
	var seccompStep *confine.Step
	if on(policy.ControlSeccomp) {
		f, err := confine.CompileSeccomp(pol.Seccomp, pol.Seccomp.Effective(), pol.CapabilityBoundingSet.Keep...)
		if err != nil {
			seccompStep = &confine.Step{Control: string(policy.ControlSeccomp), Requested: "profile " + pol.Seccomp.Profile,
				Outcome: confine.Failed, Errno: errnoName(err), Detail: "compile: " + err.Error()}
		}
		filter = f
	}

	if on(policy.ControlCapabilityBoundingSet) {
		h.step(confine.DropBoundingSet(pol.CapabilityBoundingSet))
	} else {
		h.step(skipped(policy.ControlCapabilityBoundingSet))
	}
	if on(policy.ControlPrivilegeDrop) {
		h.steps(confine.DropPrivileges(pol.PrivilegeDrop, p.UID, p.GID, p.Groups, pol.Capabilities.Keep...))
		// A credential change clears the parent-death signal: set it
		// again. Should the parent have died in between, the status pipe
		// says so: the next report fails and the decision never comes.
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	} else {
		h.step(skipped(policy.ControlPrivilegeDrop))
	}
	if on(policy.ControlCapabilities) {
		h.steps(confine.SetCapabilities(pol.Capabilities, pol.CapabilityBoundingSet))
	} else {
		h.step(skipped(policy.ControlCapabilities))
	}
	if on(policy.ControlRlimits) {
		h.steps(confine.SetRlimits(pol.Rlimits))
	} else {
		h.step(skipped(policy.ControlRlimits))
	}
	if on(policy.ControlCoreDump) {
		h.step(confine.DisableCoreDump(pol.CoreDump))
	} else {
		h.step(skipped(policy.ControlCoreDump))
	}
	if on(policy.ControlNoNewPrivs) {
		h.step(confine.SetNoNewPrivs(pol.NoNewPrivs))
	} else {
		h.step(skipped(policy.ControlNoNewPrivs))
	}
	switch {
	case !on(policy.ControlLandlock):
		h.step(skipped(policy.ControlLandlock))
	case landlockStep != nil:
		h.step(*landlockStep)
	default:
		h.step(ruleset.Restrict())
	}
	switch {
	case !on(policy.ControlSeccomp):
		h.step(skipped(policy.ControlSeccomp))
	case seccompStep != nil:
		h.step(*seccompStep)
	default:
		h.step(filter.Install(pol.Seccomp.LogDenials))
	}

	final, err := confine.ReadStatus()
	if err != nil {
		return h.fatal("read /proc/thread-self/status: %v", err)
	}
	h.send(message{Final: &final, Ready: true})

	d, err := h.in.ReadByte()
	if err != nil || d != decisionGo {
		return 125 // aborted by the parent, or the parent is gone
	}
	return h.supervise(p)
}

// forwarded are the signals the helper relays to the target.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// supervise starts the target from this thread, which carries every
// control (a forked child inherits the thread's credentials, capability
// sets, no_new_privs, seccomp filter and Landlock domain), then stays as
// its init: it relays signals, reaps orphans (in a PID namespace the
// helper is pid 1, which the kernel shields from signals it does not
// handle) and exits with the target's status.
func (h *helper) supervise(p plan) int {
	sigs := make(chan os.Signal, 8) // a burst of signals is relayed, not dropped
	signal.Notify(sigs, forwarded...)
	pid, err := syscall.ForkExec(p.Path, p.Argv, &syscall.ProcAttr{
		Env:   p.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
		}
		h.send(message{ExecError: fmt.Sprintf("exec %s: %v", p.Path, err), Errno: errnoName(err)})
		return code
	}
	h.send(message{Started: pid})
	exited := make(chan exitInfo, 1)
	go reap(pid, exited)
	for {
		select {
		case sig := <-sigs:
			_ = syscall.Kill(pid, sig.(syscall.Signal))
		case x := <-exited:
			h.send(message{Exited: &x})
			return x.Code
		}
	}
}

// reap waits for every child (orphans are reparented to the helper in a
// PID namespace) and reports how the target ended.
func reap(target int, exited chan<- exitInfo) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			exited <- exitInfo{Code: 125}
			return
		}
		if pid != target {
			continue
		}
		if ws.Signaled() {
			exited <- exitInfo{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
		} else {
			exited <- exitInfo{Code: ws.ExitStatus()}
		}
		return
	}
}

// errnoName returns the errno's name (EPERM) when err wraps one.
func errnoName(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(e))
	}
	return ""
}
