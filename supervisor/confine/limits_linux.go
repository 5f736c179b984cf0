package confine

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// SetRlimits sets each limit of p with prlimit(0, ...) (the limits belong
// to the process, not the thread) and reads it back with getrlimit: one
// step per limit, Check being its name, in name order. A hard limit above
// the current one can only be raised with CAP_SYS_RESOURCE: without it the
// kernel refuses the whole call with EPERM, and SetRlimits then sets the
// soft limit as asked within the current hard limit and reports Partial
// with EPERM, never silently keeping the old value. Setting RLIMIT_NOFILE
// this way also stops syscall.Exec from restoring Go's startup value.
func SetRlimits(p policy.Rlimits) []Step {
	names := slices.Sorted(maps.Keys(p.Limits))
	if p.Mode == policy.Off {
		s := newStep(policy.ControlRlimits, "", "off")
		s.Outcome, s.Effective, s.Detail = Skipped, "unchanged", "mode off: the resource limits are left as they are"
		return []Step{s}
	}
	steps := make([]Step, 0, len(names))
	for _, name := range names {
		steps = append(steps, setRlimit(name, p.Limits[name]))
	}
	return steps
}

func setRlimit(name string, want policy.Limit) Step {
	s := newStep(policy.ControlRlimits, name, limitString(want.Soft, want.Hard))
	res, ok := policy.RlimitResource(name)
	if !ok {
		s.fail(unix.EINVAL, "unknown resource limit %q", name)
		return s
	}
	var before unix.Rlimit
	if err := unix.Prlimit(0, res, nil, &before); err != nil {
		s.fail(err, "getrlimit(%s): %v", name, err)
		return s
	}
	s.Evidence["before"] = limitString(before.Cur, before.Max)
	lim := unix.Rlimit{Cur: want.Soft, Max: want.Hard}
	s.Evidence["syscall"] = fmt.Sprintf("prlimit(0, RLIMIT_%s, {%s})", upper(name), limitString(lim.Cur, lim.Max))
	err := unix.Prlimit(0, res, &lim, nil)
	fallback := false
	if err == unix.EPERM && want.Hard > before.Max {
		// Keep what the kernel allows: the current hard limit, the soft
		// limit as asked within it.
		lim = unix.Rlimit{Cur: min(want.Soft, before.Max), Max: before.Max}
		s.Evidence["retry"] = fmt.Sprintf("prlimit(0, RLIMIT_%s, {%s})", upper(name), limitString(lim.Cur, lim.Max))
		rerr := unix.Prlimit(0, res, &lim, nil)
		if rerr != nil {
			s.Evidence["retry_error"] = errnoName(rerr)
		}
		fallback = rerr == nil
	}
	var after unix.Rlimit
	if gerr := unix.Prlimit(0, res, nil, &after); gerr != nil {
		s.fail(gerr, "getrlimit(%s) after setting it: %v", name, gerr)
		return s
	}
	s.Effective = limitString(after.Cur, after.Max)
	switch {
	case after.Cur == want.Soft && after.Max == want.Hard:
		s.Outcome = Applied
	case fallback && after == lim:
		s.Outcome, s.Errno = Partial, errnoName(err)
		s.Detail = fmt.Sprintf("the hard limit %s cannot be raised to %s without CAP_SYS_RESOURCE; kept %s", limitValue(before.Max), limitValue(want.Hard), s.Effective)
	default:
		s.fail(err, "RLIMIT_%s is not as asked", upper(name))
	}
	return s
}

func limitValue(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func limitString(soft, hard uint64) string {
	return "soft " + limitValue(soft) + " hard " + limitValue(hard)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// DisableCoreDump sets RLIMIT_CORE to 0 (soft and hard) and clears the
// dumpable flag (PR_SET_DUMPABLE 0), reading both back with getrlimit and
// PR_GET_DUMPABLE. Applied when both are 0.
func DisableCoreDump(p policy.CoreDump) Step {
	s := newStep(policy.ControlCoreDump, "", "RLIMIT_CORE 0, dumpable 0")
	effective := func() (unix.Rlimit, int, error) {
		var lim unix.Rlimit
		if err := unix.Prlimit(0, unix.RLIMIT_CORE, nil, &lim); err != nil {
			return lim, 0, err
		}
		d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		return lim, d, err
	}
	show := func(lim unix.Rlimit, d int) {
		s.Effective = fmt.Sprintf("RLIMIT_CORE %s, dumpable %d", limitString(lim.Cur, lim.Max), d)
		s.Evidence["RLIMIT_CORE"] = limitString(lim.Cur, lim.Max)
		s.Evidence["dumpable"] = strconv.Itoa(d)
	}
	if p.Mode == policy.Off {
		lim, d, err := effective()
		if err != nil {
			s.fail(err, "cannot read the core dump settings: %v", err)
		} else {
			show(lim, d)
		}
		s.Outcome, s.Detail = Skipped, "mode off: core dumps are left as they are"
		return s
	}
	s.Evidence["syscall"] = "prlimit(0, RLIMIT_CORE, {0, 0}); prctl(PR_SET_DUMPABLE, 0)"
	limErr := unix.Prlimit(0, unix.RLIMIT_CORE, &unix.Rlimit{}, nil)
	dumpErr := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	lim, d, err := effective()
	if err != nil {
		s.fail(err, "cannot read the core dump settings back: %v", err)
		return s
	}
	show(lim, d)
	const why = "; execve resets the dumpable flag for ordinary binaries, so RLIMIT_CORE 0 is what persists into the workload"
	limOK, dumpOK := lim.Cur == 0 && lim.Max == 0, d == 0
	switch {
	case limOK && dumpOK:
		s.Outcome, s.Detail = Applied, "core dumps are off"+why
	case limOK || dumpOK:
		err := limErr
		if limOK {
			err = dumpErr
		}
		s.Outcome, s.Errno = Partial, errnoName(err)
		s.Detail = fmt.Sprintf("RLIMIT_CORE zero: %t, dumpable cleared: %t%s", limOK, dumpOK, why)
	default:
		err := limErr
		if err == nil {
			err = dumpErr
		}
		s.fail(err, "neither RLIMIT_CORE nor the dumpable flag could be cleared")
	}
	return s
}

// SetNoNewPrivs sets no_new_privs on the calling thread
// (PR_SET_NO_NEW_PRIVS): execve can no longer raise privileges through
// setuid binaries or file capabilities, and it lets an unprivileged thread
// install seccomp filters and Landlock rulesets. Effective is read back
// with PR_GET_NO_NEW_PRIVS and from the status file; Applied when both say 1.
func SetNoNewPrivs(p policy.NoNewPrivs) Step {
	s := newStep(policy.ControlNoNewPrivs, "", "no_new_privs 1")
	var setErr error
	if p.Mode != policy.Off {
		s.Evidence["syscall"] = "prctl(PR_SET_NO_NEW_PRIVS, 1)"
		setErr = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	}
	got, gerr := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	st, serr := ReadStatus()
	if gerr != nil || serr != nil {
		err := gerr
		if err == nil {
			err = serr
		}
		s.fail(err, "cannot read no_new_privs back: %v", err)
		return s
	}
	statusNNP := 0
	if st.NoNewPrivs {
		statusNNP = 1
	}
	s.Evidence["PR_GET_NO_NEW_PRIVS"] = strconv.Itoa(got)
	s.Evidence["NoNewPrivs"] = strconv.Itoa(statusNNP)
	s.Effective = fmt.Sprintf("no_new_privs %d (prctl), NoNewPrivs %d (status)", got, statusNNP)
	switch {
	case p.Mode == policy.Off:
		s.Requested, s.Outcome, s.Detail = "off", Skipped, "mode off: no_new_privs is left as it is"
	case got == 1 && st.NoNewPrivs:
		s.Outcome = Applied
	default:
		s.fail(setErr, "no_new_privs is not set")
	}
	return s
}
