package confine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// DropPrivileges switches the calling thread to gid, groups and uid, in the
// order setgroups, setresgid, setresuid, with raw system calls that change
// the calling thread only (syscall.Setuid would change every thread of
// the process; the thread that execs is what matters). It returns three
// steps, "setgroups", "setgid" and "setuid", each with the ids read back
// from /proc/thread-self/status: Applied when real, effective, saved and
// filesystem ids (or the group list) are what was asked, Failed
// otherwise. An id already in place is not set again, so the current ids
// of an unprivileged supervisor (see ResolveIDs) are Applied without
// privilege.
//
// keep are the capabilities the workload keeps (policy.Capabilities.Keep):
// when there are any, PR_SET_KEEPCAPS is set around the switch so that the
// permitted set survives it (SetCapabilities then trims it); with none,
// the kernel clears every capability when a root thread switches uid,
// which is the safe default.
func DropPrivileges(p policy.PrivilegeDrop, uid, gid int, groups []int, keep ...policy.Capability) []Step {
	groups = slices.Clone(groups)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	sg := newStep(policy.ControlPrivilegeDrop, "setgroups", "groups ["+joinInts(groups)+"]")
	sgid := newStep(policy.ControlPrivilegeDrop, "setgid", "gid "+strconv.Itoa(gid))
	suid := newStep(policy.ControlPrivilegeDrop, "setuid", "uid "+strconv.Itoa(uid))
	steps := []*Step{&sg, &sgid, &suid}
	out := func() []Step { return []Step{sg, sgid, suid} }

	before, err := ReadStatus()
	if err != nil {
		for _, s := range steps {
			s.fail(err, "cannot read the thread's credentials: %v", err)
		}
		return out()
	}
	if p.Mode == policy.Off {
		readBackIDs(before, steps)
		for _, s := range steps {
			s.Outcome, s.Detail = Skipped, "mode off: the ids are left as they are"
		}
		return out()
	}
	if uid < 0 || gid < 0 || uid > 1<<32-2 || gid > 1<<32-2 {
		for _, s := range steps {
			s.fail(unix.EINVAL, "uid %d or gid %d is out of range", uid, gid)
		}
		return out()
	}
	keepCaps := len(keep) > 0
	if keepCaps {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			suid.Evidence["keepcaps_error"] = errnoName(err)
		}
		suid.Evidence["keepcaps"] = "PR_SET_KEEPCAPS 1 around the switch"
	}
	errs := make([]error, 3)
	if slices.Equal(sortedGroups(before.Groups), groups) {
		sg.Evidence["syscall"] = "none: the groups were already in place"
	} else {
		sg.Evidence["syscall"] = fmt.Sprintf("setgroups(%d, [%s])", len(groups), joinInts(groups))
		gids := make([]uint32, len(groups))
		for i, g := range groups {
			gids[i] = uint32(g)
		}
		var ptr unsafe.Pointer
		if len(gids) > 0 {
			ptr = unsafe.Pointer(&gids[0])
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(ptr), 0); e != 0 {
			errs[0] = e
		}
	}
	if allEqual(gid, before.GID, before.EGID, before.SGID, before.FSGID) {
		sgid.Evidence["syscall"] = "none: the gid was already in place"
	} else {
		sgid.Evidence["syscall"] = fmt.Sprintf("setresgid(%d, %d, %d)", gid, gid, gid)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
			errs[1] = e
		}
	}
	if allEqual(uid, before.UID, before.EUID, before.SUID, before.FSUID) {
		suid.Evidence["syscall"] = "none: the uid was already in place"
	} else {
		suid.Evidence["syscall"] = fmt.Sprintf("setresuid(%d, %d, %d)", uid, uid, uid)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			errs[2] = e
		}
	}
	if keepCaps {
		_ = unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0) // execve clears it anyway
	}

	after, err := ReadStatus()
	if err != nil {
		for _, s := range steps {
			s.fail(err, "cannot read the thread's credentials back: %v", err)
		}
		return out()
	}
	readBackIDs(after, steps)
	ok := []bool{
		slices.Equal(sortedGroups(after.Groups), groups),
		allEqual(gid, after.GID, after.EGID, after.SGID, after.FSGID),
		allEqual(uid, after.UID, after.EUID, after.SUID, after.FSUID),
	}
	what := []string{"supplementary groups", "gid", "uid"}
	need := []string{"CAP_SETGID", "CAP_SETGID", "CAP_SETUID"}
	for i, s := range steps {
		if ok[i] {
			s.Outcome = Applied
			continue
		}
		s.fail(errs[i], "the %s could not be set%s", what[i], eperm(errs[i], " (needs "+need[i]+")"))
	}
	return out()
}

// readBackIDs fills the steps' Effective and Evidence from st.
func readBackIDs(st Status, steps []*Step) {
	steps[0].Effective = "groups [" + joinInts(sortedGroups(st.Groups)) + "]"
	steps[1].Effective = fmt.Sprintf("gid %d/%d/%d/%d", st.GID, st.EGID, st.SGID, st.FSGID)
	steps[2].Effective = fmt.Sprintf("uid %d/%d/%d/%d", st.UID, st.EUID, st.SUID, st.FSUID)
	steps[0].Evidence["Groups"] = joinInts(st.Groups)
	steps[1].Evidence["Gid"] = fmt.Sprintf("%d %d %d %d", st.GID, st.EGID, st.SGID, st.FSGID)
	steps[2].Evidence["Uid"] = fmt.Sprintf("%d %d %d %d", st.UID, st.EUID, st.SUID, st.FSUID)
}

func sortedGroups(g []int) []int {
	g = slices.Clone(g)
	slices.Sort(g)
	return slices.Compact(g)
}

func allEqual(want int, got ...int) bool {
	for _, g := range got {
		if g != want {
			return false
		}
	}
	return true
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}
