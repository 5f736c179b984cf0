package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
	"github.com/sandtrail/sandtrail/supervisor/probe"
)

// Exit statuses of a launch that did not run the command to its end,
// following env(1) and container runtimes.
const (
	ExitRefused    = 125 // sandtrail did not start the command: a required control failed, or recording failed
	ExitCannotExec = 126 // the command was found but could not be executed (permissions, Landlock)
	ExitNotFound   = 127 // the command was not found
)

// Config describes one launch. Policy, Argv and Recorder are required.
type Config struct {
	Policy   *policy.Policy // resolved (defaults filled)
	Argv     []string       // the command and its arguments
	Env      []string       // default os.Environ()
	Stdin    io.Reader      // default os.Stdin
	Stdout   io.Writer      // default os.Stdout
	Stderr   io.Writer      // default os.Stderr
	Recorder Recorder
	RunID    string
	// Signals are forwarded to the sandboxed process while it runs (the
	// caller subscribes to SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2).
	Signals <-chan os.Signal
	// HelperPath is the sandtrail binary to re-execute; default
	// /proc/self/exe.
	HelperPath string
	// Now is the event clock; default time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
}

// Result is what happened to a launch.
type Result struct {
	RunID    string
	Controls []*ControlResult
	Posture  Posture
	Refused  bool   // a required control failed: the command never ran
	Reason   string // why it was refused or could not run
	Started  bool   // the command was exec'd
	ExitCode int    // the command's exit status, 128+signal, or one of the Exit* codes
	Signal   syscall.Signal
}

// Launch runs cfg.Argv confined by cfg.Policy and returns when it has
// exited. Every decision event is durable through cfg.Recorder before the
// command is exec'd; a launch whose events cannot be recorded is refused.
// The error is non-nil only when the launch could not be carried out or
// recorded; a refused launch or a failing command is a Result.
func Launch(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Policy == nil || len(cfg.Argv) == 0 || cfg.Recorder == nil {
		return nil, errors.New("supervisor: Policy, Argv and Recorder are required")
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.HelperPath == "" {
		cfg.HelperPath = "/proc/self/exe"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &launch{cfg: cfg, res: &Result{RunID: cfg.RunID}}
	l.run = &run{id: cfg.RunID, policy: cfg.Policy, polUID: cfg.Policy.UID(), argv: cfg.Argv, actor: supervisorProcess(), cpid: newUID(),
		now: func() int64 { return cfg.Now().UnixMilli() }}
	return l.do(ctx)
}

type launch struct {
	cfg Config
	res *Result
	run *run
	log zerolog.Logger
}

func supervisorProcess() *schema.Process {
	exe, _ := os.Executable()
	p := &schema.Process{PID: schema.Ptr(os.Getpid()), Name: "sandtrail", CmdLine: strings.Join(os.Args, " "),
		EUID: schema.Ptr(os.Geteuid()), EGID: schema.Ptr(os.Getegid())}
	if exe != "" {
		p.File = &schema.File{Name: baseName(exe), Path: exe, TypeID: schema.FileTypeIDRegularFile}
	}
	return p
}

// started is the helper process and its pipes.
type started struct {
	cmd     *exec.Cmd
	planW   *os.File
	status  *bufio.Scanner
	waited  chan error // cmd.Wait's result, from the thread that started it
	nsErrno string
}

func (l *launch) do(ctx context.Context) (*Result, error) {
	pol := l.cfg.Policy
	path, err := lookPath(l.cfg.Argv[0], l.cfg.Env)
	if err != nil {
		return l.cannotStart(ctx, ExitNotFound, err.Error())
	}
	uid, gid, groups, switchIDs, err := confine.ResolveIDs(pol.PrivilegeDrop, os.Geteuid())
	if err != nil {
		return l.cannotStart(ctx, ExitRefused, "privilege_drop: "+err.Error())
	}
	if refused, err := l.preflight(ctx); refused || err != nil {
		return l.res, err
	}
	p := plan{Policy: pol, Path: path, Argv: l.cfg.Argv, Env: l.cfg.Env, UID: uid, GID: gid, Groups: groups,
		SwitchIDs: switchIDs, ParentNS: confine.NamespaceInodes(), Parent: os.Getpid()}
	st, err := l.start(p)
	if err != nil {
		return nil, err
	}
	defer st.planW.Close()
	l.run.pid = st.cmd.Process.Pid
	steps, final, fatal := readSteps(st.status)
	l.run.final = final
	results := judge(pol, steps, final)
	l.res.Controls = results
	l.res.Posture = assess(results)

	var refusal []string
	for _, r := range results {
		if r.Verdict == Failed {
			refusal = append(refusal, fmt.Sprintf("%s: %s", r.Control, r.Reason))
		}
	}
	if fatal != "" {
		refusal = append(refusal, "helper: "+fatal)
	}
	evs := l.decisionEvents(results)
	if len(refusal) > 0 {
		l.res.Refused = true
		l.res.Reason = strings.Join(refusal, "; ")
		evs = append(evs, l.run.processEvent(schema.ProcessActivityActivityIDLaunch, false, "LAUNCH_REFUSED",
			"launch refused before exec: "+l.res.Reason))
	}
	record := l.cfg.Recorder.Emit
	if l.res.Refused {
		record = l.cfg.Recorder.End // LAUNCH_REFUSED is the run's last event
	}
	if err := record(ctx, evs...); err != nil {
		l.abort(st)
		return nil, fmt.Errorf("supervisor: record decisions; launch refused: %w", err)
	}
	if l.res.Refused {
		l.abort(st)
		l.res.ExitCode = ExitRefused
		return l.finish(ctx, nil)
	}
	// The decisions are durable: let the helper exec.
	if _, err := st.planW.Write([]byte{decisionGo}); err != nil {
		l.abort(st)
		return nil, fmt.Errorf("supervisor: tell the helper to exec: %w", err)
	}
	targetPID, execErr, errno := readStart(st.status)
	if execErr != "" {
		waitErr := <-st.waited
		l.res.ExitCode = exitCode(waitErr, ExitCannotExec)
		l.res.Reason = execErr
		ev := l.run.processEvent(schema.ProcessActivityActivityIDLaunch, false, "LAUNCH_FAILED", execErr)
		ev.StatusCode = errno
		return l.finish(ctx, []schema.Event{ev})
	}
	if hostPID := childOf(l.run.pid); hostPID > 0 {
		l.run.pid = hostPID
	} else if targetPID > 0 && pol.Namespaces.Mode == policy.Off {
		l.run.pid = targetPID
	}
	l.res.Started = true
	launched := []schema.Event{l.run.processEvent(schema.ProcessActivityActivityIDLaunch, true, "LAUNCH",
		fmt.Sprintf("%s started in sandbox %s (posture %s)", l.cfg.Argv[0], pol.Name, l.res.Posture))}
	if p.SwitchIDs && final != nil {
		launched = append(launched, l.run.processEvent(schema.ProcessActivityActivityIDSetUserID, true, "SETUID",
			fmt.Sprintf("privileges dropped to uid %d gid %d before exec", final.EUID, final.EGID)))
	}
	if err := l.cfg.Recorder.Emit(ctx, launched...); err != nil {
		l.cfg.Logger.Error().Err(err).Msg("record the launch event")
	}
	l.forward(st)
	return l.finish(ctx, nil)
}

// preflight probes the host and refuses, before forking, a launch whose
// required controls the host cannot meet. A probe that fails is logged and
// the helper, which reports what the kernel really does, decides.
func (l *launch) preflight(ctx context.Context) (refused bool, err error) {
	rep, err := probe.Controls(ctx)
	if err != nil {
		l.cfg.Logger.Warn().Err(err).Msg("host probe failed; the helper's own results decide")
		return false, nil
	}
	flags, _, _, _ := cloneFlags(l.cfg.Policy)
	steps := preflight(l.cfg.Policy, rep, flags&unix.CLONE_NEWUSER != 0)
	if len(steps) == 0 {
		return false, nil
	}
	var evs []schema.Event
	var reasons []string
	for _, st := range steps {
		r := &ControlResult{Control: policy.Control(st.Control), Mode: l.cfg.Policy.Mode(policy.Control(st.Control)), Steps: []confine.Step{st}}
		r.decide()
		l.res.Controls = append(l.res.Controls, r)
		cf := l.run.complianceFinding(r)
		evs = append(evs, cf, l.run.detectionFinding(r, cf))
		reasons = append(reasons, fmt.Sprintf("%s: %s", r.Control, r.Reason))
	}
	l.res.Refused = true
	l.res.Reason = strings.Join(reasons, "; ")
	l.res.ExitCode = ExitRefused
	evs = append(evs, l.run.processEvent(schema.ProcessActivityActivityIDLaunch, false, "LAUNCH_REFUSED",
		"launch refused before fork: "+l.res.Reason))
	if err := l.cfg.Recorder.End(ctx, evs...); err != nil {
		return true, fmt.Errorf("supervisor: record the refusal: %w", err)
	}
	return true, nil
}

// decisionEvents: a Compliance Finding per control, a Detection Finding
// for each degraded or failed one, and the posture.
func (l *launch) decisionEvents(results []*ControlResult) []schema.Event {
	var evs []schema.Event
	for _, r := range results {
		cf := l.run.complianceFinding(r)
		evs = append(evs, cf)
		if r.Verdict == Degraded || r.Verdict == Failed {
			evs = append(evs, l.run.detectionFinding(r, cf))
		}
	}
	return append(evs, l.run.postureEvent(l.res.Posture, results))
}

// finish records the last event of the run (Terminate, or the given
// events for a run that never started a command) with the run's count.
func (l *launch) finish(ctx context.Context, last []schema.Event) (*Result, error) {
	if l.res.Started {
		msg := fmt.Sprintf("%s exited with status %d", l.cfg.Argv[0], l.res.ExitCode)
		ev := l.run.processEvent(schema.ProcessActivityActivityIDTerminate, true, "EXIT", msg)
		ev.ExitCode = schema.Ptr(l.res.ExitCode)
		if l.res.Signal != 0 {
			ev.StatusDetail = fmt.Sprintf("killed by signal %s (%d)", unix.SignalName(l.res.Signal), int(l.res.Signal))
			ev.Message = fmt.Sprintf("%s killed by %s", l.cfg.Argv[0], unix.SignalName(l.res.Signal))
		}
		last = append(last, ev)
	}
	if len(last) == 0 {
		return l.res, nil
	}
	if err := l.cfg.Recorder.End(ctx, last...); err != nil {
		return l.res, fmt.Errorf("supervisor: record the end of run %s: %w", l.cfg.RunID, err)
	}
	return l.res, nil
}

// cannotStart records a launch that failed before the helper started.
func (l *launch) cannotStart(ctx context.Context, code int, reason string) (*Result, error) {
	l.res.ExitCode = code
	l.res.Reason = reason
	ev := l.run.processEvent(schema.ProcessActivityActivityIDLaunch, false, "LAUNCH_FAILED", "launch failed: "+reason)
	return l.finish(ctx, []schema.Event{ev})
}

func (l *launch) abort(st *started) {
	_, _ = st.planW.Write([]byte{decisionAbort})
	<-st.waited
}

// start re-executes sandtrail as the helper in the policy's namespaces.
// If the namespaces cannot be created and the policy allows it, the
// helper starts without them and reports them failed.
func (l *launch) start(p plan) (*started, error) {
	flags, uidMaps, gidMaps, setgroups := cloneFlags(p.Policy)
	st, err := l.startWith(p, flags, uidMaps, gidMaps, setgroups)
	if err != nil && flags != 0 {
		p.NamespaceErr = errnoName(err)
		if p.NamespaceErr == "" {
			p.NamespaceErr = "EPERM"
		}
		st, err = l.startWith(p, 0, nil, nil, false)
	}
	if err != nil {
		return nil, fmt.Errorf("supervisor: start the helper: %w", err)
	}
	return st, nil
}

func (l *launch) startWith(p plan, flags uintptr, uidMaps, gidMaps []syscall.SysProcIDMap, setgroups bool) (*started, error) {
	planR, planW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		planR.Close()
		planW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:       l.cfg.HelperPath,
		Args:       []string{"sandtrail", HelperCommand},
		Env:        p.Env,
		Stdin:      l.cfg.Stdin,
		Stdout:     l.cfg.Stdout,
		Stderr:     l.cfg.Stderr,
		ExtraFiles: []*os.File{planR, statusW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 flags,
			UidMappings:                uidMaps,
			GidMappings:                gidMaps,
			GidMappingsEnableSetgroups: setgroups,
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	startErr := make(chan error, 1)
	waited := make(chan error, 1)
	// The parent-death signal fires when the thread that forked exits, so
	// that thread stays locked, and alive, until the helper exits.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		waited <- cmd.Wait()
	}()
	err = <-startErr
	planR.Close()
	statusW.Close()
	if err != nil {
		planW.Close()
		statusR.Close()
		return nil, err
	}
	p.Parent = os.Getpid()
	line, _ := json.Marshal(p)
	if _, err := planW.Write(append(line, '\n')); err != nil {
		_ = cmd.Process.Kill()
		<-waited
		return nil, fmt.Errorf("send the plan: %w", err)
	}
	sc := bufio.NewScanner(statusR)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &started{cmd: cmd, planW: planW, status: sc, waited: waited}, nil
}

// cloneFlags turns the namespace policy into clone flags. A supervisor
// that is not root needs a user namespace to create any other, so one is
// added; inside it the supervisor's own uid and gid map to themselves.
func cloneFlags(p *policy.Policy) (flags uintptr, uidMaps, gidMaps []syscall.SysProcIDMap, setgroups bool) {
	if p.Namespaces.Mode == policy.Off {
		return 0, nil, nil, false
	}
	n := p.Namespaces
	for on, f := range map[*bool]uintptr{&n.PID: unix.CLONE_NEWPID, &n.Mount: unix.CLONE_NEWNS, &n.IPC: unix.CLONE_NEWIPC,
		&n.UTS: unix.CLONE_NEWUTS, &n.Net: unix.CLONE_NEWNET, &n.Cgroup: unix.CLONE_NEWCGROUP} {
		if *on {
			flags |= f
		}
	}
	euid, egid := os.Geteuid(), os.Getegid()
	if n.User || (flags != 0 && euid != 0) {
		flags |= unix.CLONE_NEWUSER
		if euid == 0 {
			uidMaps = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
			gidMaps = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
			setgroups = true
		} else {
			uidMaps = []syscall.SysProcIDMap{{ContainerID: euid, HostID: euid, Size: 1}}
			gidMaps = []syscall.SysProcIDMap{{ContainerID: egid, HostID: egid, Size: 1}}
		}
	}
	return flags, uidMaps, gidMaps, setgroups
}

// readSteps reads the helper's reports up to its ready message.
func readSteps(sc *bufio.Scanner) (steps []confine.Step, final *confine.Status, fatal string) {
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return steps, final, "malformed report: " + err.Error()
		}
		switch {
		case m.Step != nil:
			steps = append(steps, *m.Step)
		case m.Fatal != "":
			return steps, final, m.Fatal
		case m.Ready:
			return steps, m.Final, ""
		}
	}
	if err := sc.Err(); err != nil {
		return steps, final, "read reports: " + err.Error()
	}
	return steps, final, "the helper exited before it was ready"
}

// readStart waits for the helper to report the target started (its pid)
// or failed to start.
func readStart(sc *bufio.Scanner) (pid int, execErr, errno string) {
	for sc.Scan() {
		var m message
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		switch {
		case m.ExecError != "":
			return 0, m.ExecError, m.Errno
		case m.Started > 0:
			return m.Started, "", ""
		}
	}
	return 0, "the helper exited before starting the command", ""
}

// childOf returns the first child of pid as the host sees it: the target,
// whose pid inside a PID namespace means nothing outside.
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	var child int
	if _, err := fmt.Sscan(string(b), &child); err != nil {
		return 0
	}
	return child
}

// forward relays signals to the helper, which relays them to the target,
// until the helper exits; the target's status comes from the helper's
// last report.
func (l *launch) forward(st *started) {
	exited := make(chan *exitInfo, 1)
	go func() {
		var last *exitInfo
		for st.status.Scan() {
			var m message
			if json.Unmarshal(st.status.Bytes(), &m) == nil && m.Exited != nil {
				last = m.Exited
			}
		}
		exited <- last
	}()
	for {
		select {
		case err := <-st.waited:
			x := <-exited
			switch {
			case x != nil:
				l.res.ExitCode, l.res.Signal = x.Code, syscall.Signal(x.Signal)
			default:
				l.res.ExitCode = exitCode(err, ExitRefused)
				if ee, ok := err.(*exec.ExitError); ok {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
						l.res.Signal = ws.Signal()
					}
				}
			}
			return
		case sig := <-l.cfg.Signals:
			if s, ok := sig.(syscall.Signal); ok {
				_ = st.cmd.Process.Signal(s)
			}
		}
	}
}

// exitCode maps a Wait error to a shell-style status.
func exitCode(err error, otherwise int) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
	return otherwise
}

// lookPath resolves the command with the PATH of the sandbox's environment.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH", name)
}
