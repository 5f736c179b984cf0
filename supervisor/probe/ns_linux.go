package probe

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// nsKind is a namespace a child may be created in.
type nsKind struct {
	facility string
	flag     uintptr
	name     string // in clone flags: CLONE_NEWPID...
}

func nsKinds() []nsKind {
	return []nsKind{
		{FacilityPIDNamespace, unix.CLONE_NEWPID, "CLONE_NEWPID"},
		{FacilityMountNamespace, unix.CLONE_NEWNS, "CLONE_NEWNS"},
		{FacilityIPCNamespace, unix.CLONE_NEWIPC, "CLONE_NEWIPC"},
		{FacilityUTSNamespace, unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
		{FacilityNetNamespace, unix.CLONE_NEWNET, "CLONE_NEWNET"},
		{FacilityCgroupNS, unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
	}
}

// namespaces tests, in throwaway children that exec true(1) and are
// reaped at once, whether a child can be created in a new user namespace
// and in each other kind of namespace: directly with the caller's
// credentials, else inside a new user namespace. It starts one child for
// all kinds together and, only if that fails, one per kind.
func namespaces(ctx context.Context, creds Creds) ([]Facility, UserNamespaces, error) {
	un := UserNamespaces{Max: -1}
	user := Facility{Name: FacilityUserNamespaces, Evidence: map[string]string{}}
	if s, err := readEvidence(user.Evidence, "/proc/sys/user/max_user_namespaces"); err == nil {
		if n, err := strconv.Atoi(s); err == nil {
			un.Max = n
		}
	}
	if s, err := readEvidence(user.Evidence, "/proc/self/uid_map"); err == nil {
		un.UIDMap = strings.Join(strings.Fields(s), " ")
		un.Initial = un.UIDMap == "0 0 4294967295"
	}
	// Distribution switches, recorded when present.
	for _, p := range []string{"/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"} {
		if _, err := os.Stat(p); err == nil {
			readEvidence(user.Evidence, p)
		}
	}
	kinds := nsKinds()
	facs := make([]Facility, 0, 1+len(kinds))
	truePath := findTrue()
	if truePath == "" {
		user.Status, user.Detail = Unknown, "not tested: neither /bin/true nor /usr/bin/true exists to run in a throwaway child"
		facs = append(facs, user)
		for _, k := range kinds {
			facs = append(facs, Facility{Name: k.facility, Status: Unknown, Detail: user.Detail})
		}
		return facs, un, nil
	}
	sp := spawner{path: truePath, uid: creds.EUID, gid: creds.EGID}
	// A control child with no new namespace: if even it fails (a Landlock
	// domain or a filter forbidding execve, a process limit), no failure
	// below could be blamed on namespaces.
	control := map[string]string{}
	if e, err := sp.try(ctx, control, 0); err != nil {
		return nil, un, err
	} else if e != 0 {
		user.Status = Unknown
		user.Detail = fmt.Sprintf("not tested: even a child creating no namespace could not run %s (%s)", truePath, errnoName(e))
		maps.Copy(user.Evidence, control)
		facs = append(facs, user)
		for _, k := range kinds {
			facs = append(facs, Facility{Name: k.facility, Status: Unknown, Detail: user.Detail, Evidence: maps.Clone(control)})
		}
		return facs, un, nil
	}

	userErr, err := sp.try(ctx, user.Evidence, unix.CLONE_NEWUSER)
	if err != nil {
		return nil, un, err
	}
	where := "in the initial user namespace"
	if !un.Initial {
		where = "inside a user namespace already (uid_map " + un.UIDMap + ")"
	}
	if userErr == 0 {
		user.Status = Available
		user.Detail = fmt.Sprintf("a child can create a user namespace (uid %d mapped to itself); this process runs %s", creds.EUID, where)
	} else {
		user.Status, user.Errno = Unavailable, errnoName(userErr)
		switch userErr {
		case unix.EPERM:
			user.Detail = "a child cannot create a user namespace (EPERM): a seccomp filter, an LSM or a distribution sysctl forbids it"
		case unix.ENOSPC:
			user.Detail = fmt.Sprintf("a child cannot create a user namespace (ENOSPC): the limit max_user_namespaces (%d) is reached", un.Max)
		case unix.EINVAL:
			user.Detail = "a child cannot create a user namespace (EINVAL): the kernel is built without CONFIG_USER_NS"
		default:
			user.Detail = fmt.Sprintf("a child cannot create a user namespace (%s)", user.Errno)
		}
		user.Detail += "; this process runs " + where
	}
	facs = append(facs, user)

	// Directly: all kinds in one child, else one child per kind.
	direct := make([]syscall.Errno, len(kinds))
	evs := make([]map[string]string, len(kinds))
	var all uintptr
	for i, k := range kinds {
		evs[i] = map[string]string{}
		all |= k.flag
	}
	shared := map[string]string{}
	allErr, err := sp.try(ctx, shared, all)
	if err != nil {
		return nil, un, err
	}
	for i, k := range kinds {
		if allErr == 0 {
			maps.Copy(evs[i], shared)
		} else if direct[i], err = sp.try(ctx, evs[i], k.flag); err != nil {
			return nil, un, err
		}
	}
	// Inside a new user namespace, for the kinds that failed directly.
	var failed uintptr
	for i, k := range kinds {
		if direct[i] != 0 {
			failed |= k.flag
		}
	}
	viaUser := make([]syscall.Errno, len(kinds))
	if failed != 0 && userErr == 0 {
		shared := map[string]string{}
		failedErr, err := sp.try(ctx, shared, unix.CLONE_NEWUSER|failed)
		if err != nil {
			return nil, un, err
		}
		for i, k := range kinds {
			if direct[i] == 0 {
				continue
			}
			if failedErr == 0 {
				maps.Copy(evs[i], shared)
			} else if viaUser[i], err = sp.try(ctx, evs[i], unix.CLONE_NEWUSER|k.flag); err != nil {
				return nil, un, err
			}
		}
	}
	for i, k := range kinds {
		kind := strings.TrimPrefix(k.facility, "namespaces.")
		f := Facility{Name: k.facility, Evidence: evs[i]}
		switch {
		case direct[i] == 0:
			f.Status = Available
			f.Detail = fmt.Sprintf("a child can create a new %s namespace", kind)
		case userErr == 0 && viaUser[i] == 0:
			f.Status, f.Errno = Partial, errnoName(direct[i])
			f.Detail = fmt.Sprintf("a child can create a new %s namespace only inside a new user namespace (directly: %s)", kind, f.Errno)
		case userErr == 0:
			f.Status, f.Errno = Unavailable, errnoName(viaUser[i])
			f.Detail = fmt.Sprintf("a child cannot create a new %s namespace (directly: %s; inside a new user namespace: %s)", kind, errnoName(direct[i]), f.Errno)
		default:
			f.Status, f.Errno = Unavailable, errnoName(direct[i])
			f.Detail = fmt.Sprintf("a child cannot create a new %s namespace (%s), nor a user namespace to create it in (%s)", kind, f.Errno, errnoName(userErr))
		}
		facs = append(facs, f)
	}
	return facs, un, nil
}

// findTrue returns the path of true(1), looked for in fixed places so that
// PATH cannot change what the probe runs.
func findTrue() string {
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if unix.Access(p, unix.X_OK) == nil {
			return p
		}
	}
	return ""
}

// spawner starts throwaway children running path.
type spawner struct {
	path     string
	uid, gid int
}

// try starts a child with clone flags, maps uid and gid to themselves when
// flags create a user namespace, reaps it and records the outcome in ev.
// It returns the errno that prevented the child, or 0 once the child was
// created and exec'd: then the namespaces existed, whatever the child's
// exit status or a failed wait (ECHILD when the caller ignores SIGCHLD)
// say, and those are only recorded. Its error is ctx's, or a failure that
// carries no errno.
func (s spawner) try(ctx context.Context, ev map[string]string, flags uintptr) (syscall.Errno, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var names []string
	for _, k := range append([]nsKind{{flag: unix.CLONE_NEWUSER, name: "CLONE_NEWUSER"}}, nsKinds()...) {
		if flags&k.flag != 0 {
			names = append(names, k.name)
		}
	}
	if len(names) == 0 {
		names = []string{"0"}
	}
	key := fmt.Sprintf("clone(%s) + execve(%s)", strings.Join(names, "|"), s.path)
	sys := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if flags&unix.CLONE_NEWUSER != 0 {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: s.uid, HostID: s.uid, Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: s.gid, HostID: s.gid, Size: 1}}
		sys.GidMappingsEnableSetgroups = false // required to write gid_map without CAP_SETGID
	}
	pid, err := syscall.ForkExec(s.path, []string{s.path}, &syscall.ProcAttr{Env: []string{}, Sys: sys})
	if err != nil {
		ev[key] = errOutcome(err)
		if e, ok := err.(syscall.Errno); ok {
			return e, nil
		}
		return 0, fmt.Errorf("probe: %s: %w", key, err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		ev[key] = "ok (wait: " + errOutcome(err) + ")"
	case ws.Exited() && ws.ExitStatus() == 0:
		ev[key] = "ok"
	default:
		ev[key] = fmt.Sprintf("ok (wait status %#x)", uint32(ws))
	}
	return 0, nil
}

func uname() (Kernel, string) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Kernel{}, ""
	}
	return Kernel{
		Release: unix.ByteSliceToString(u.Release[:]),
		Version: unix.ByteSliceToString(u.Version[:]),
		Machine: unix.ByteSliceToString(u.Machine[:]),
	}, unix.ByteSliceToString(u.Nodename[:])
}

func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id
			}
		}
	}
	return ""
}

// cgroups reads the mounted hierarchies from /proc/self/mountinfo and the
// controllers enabled at the cgroup2 root.
func cgroups() (Facility, Cgroup) {
	f := Facility{Name: FacilityCgroups, Evidence: map[string]string{}}
	var cg Cgroup
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		f.Evidence["/proc/self/mountinfo"] = errOutcome(err)
		f.Status, f.Detail = Unknown, "cannot read /proc/self/mountinfo"
		cg.Version = "unknown"
		return f, cg
	}
	defer file.Close()
	var v1 []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(postFields) < 3 {
			continue
		}
		switch postFields[0] {
		case "cgroup2":
			if cg.V2Mount == "" {
				cg.V2Mount = unescapeMount(fields[4])
			}
		case "cgroup":
			// Superoptions: the controllers (or name=) among mount flags.
			for opt := range strings.SplitSeq(postFields[2], ",") {
				switch {
				case strings.Contains(opt, "=") && !strings.HasPrefix(opt, "name="),
					slices.Contains([]string{"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods"}, opt),
					slices.Contains(v1, opt):
				default:
					v1 = append(v1, opt)
				}
			}
		}
	}
	slices.Sort(v1)
	cg.V1Controllers = v1
	if cg.V2Mount != "" {
		if s, err := readEvidence(f.Evidence, filepath.Join(cg.V2Mount, "cgroup.controllers")); err == nil {
			cg.V2Controllers = strings.Fields(s)
		}
	}
	if len(v1) > 0 {
		f.Evidence["/proc/self/mountinfo cgroup v1 options"] = strings.Join(v1, " ")
	}
	v2Has := func(c string) bool { return slices.Contains(cg.V2Controllers, c) }
	ctrl := strings.Join(cg.V2Controllers, " ")
	switch {
	case cg.V2Mount != "" && len(v1) == 0:
		cg.Version, f.Status = "2", Available
		f.Detail = fmt.Sprintf("cgroup v2 at %s, controllers [%s]", cg.V2Mount, ctrl)
		if !v2Has("pids") || !v2Has("memory") {
			f.Status = Partial
			f.Detail += ": pids or memory is not enabled, so children cannot be limited by them"
		}
	case cg.V2Mount != "":
		cg.Version, f.Status = "hybrid", Partial
		f.Detail = fmt.Sprintf("hybrid: cgroup v2 at %s with controllers [%s], v1 hierarchies [%s]; a child placed with a v2 cgroup fd is limited only by the v2 controllers", cg.V2Mount, ctrl, strings.Join(v1, " "))
	case len(v1) > 0:
		cg.Version, f.Status = "1", Partial
		f.Detail = fmt.Sprintf("cgroup v1 only [%s]: no child can be placed in a cgroup at creation", strings.Join(v1, " "))
	default:
		cg.Version, f.Status = "none", Unavailable
		f.Detail = "no cgroup hierarchy is mounted"
	}
	return f, cg
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
