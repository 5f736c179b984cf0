package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe examines the host and the calling process; see the package
// documentation for what it guarantees. It fails only when ctx ends or
// when /proc cannot be read (without it nothing it says could be
// trusted); every other difficulty becomes a facility's status.
//
// Capabilities, no_new_privs and seccomp are per thread: Probe makes all
// its calls from one locked thread and reads that thread's status.
func Probe(ctx context.Context) (*Report, error) { return probe(ctx, true) }

// Controls is Probe without the namespace and cgroup probes, which fork
// throwaway children: what a launch needs to decide before forking (the
// bounding set, no_new_privs, Landlock, seccomp), at a fraction of the
// cost. Its Facilities lack the namespaces.* and cgroups entries; the
// launch learns about namespaces from its own clone.
func Controls(ctx context.Context) (*Report, error) { return probe(ctx, false) }

func probe(ctx context.Context, all bool) (*Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	statusPath, creds, err := readCreds()
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	r := &Report{Creds: creds}
	r.Kernel, r.Hostname = uname()
	r.MachineID = machineID()

	lastEv := map[string]string{}
	r.CapLastCap = -1
	if s, err := readEvidence(lastEv, "/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < 63 {
			r.CapLastCap = n
		}
	}
	var bset Facility
	bset, r.BoundingSetDrop = boundingSet(r.CapLastCap, creds, statusPath, lastEv)
	r.Facilities = append(r.Facilities, bset, noNewPrivs(&r.Creds))

	var ll Facility
	ll, r.LandlockABI, r.LandlockErrata = landlock()
	r.Facilities = append(r.Facilities, ll)

	var sc Facility
	sc, r.SeccompActions, r.SeccompFilterFlags = seccomp(&r.Creds)
	r.Facilities = append(r.Facilities, sc)

	if !all {
		return r, nil
	}
	nss, userns, err := namespaces(ctx, creds)
	if err != nil {
		return nil, err
	}
	r.UserNamespaces = userns
	r.Facilities = append(r.Facilities, nss...)

	var cg Facility
	cg, r.Cgroup = cgroups()
	r.Facilities = append(r.Facilities, cg)
	return r, nil
}

// readCreds parses the status of the calling thread (of the process on
// kernels without /proc/thread-self, < 3.17).
func readCreds() (path string, c Creds, err error) {
	for _, path = range []string{"/proc/thread-self/status", "/proc/self/status"} {
		var b []byte
		if b, err = os.ReadFile(path); err != nil {
			continue
		}
		if c, err = parseStatus(bytes.NewReader(b)); err != nil {
			return path, Creds{}, fmt.Errorf("%s: %w", path, err)
		}
		return path, c, nil
	}
	return path, Creds{}, err
}

func boundingSet(last int, creds Creds, statusPath string, ev map[string]string) (Facility, BoundingSetDrop) {
	f := Facility{Name: FacilityBoundingSet, Evidence: ev}
	ev[statusPath+" CapEff"] = creds.CapEff.String()
	ev[statusPath+" CapBnd"] = creds.CapBnd.String()
	if last < 0 {
		f.Status = Unknown
		f.Detail = "not probed: /proc/sys/kernel/cap_last_cap is unreadable, and only a capability number known to be invalid makes the probe harmless"
		return f, DropUnknown
	}
	r, e := prctl(ev, fmt.Sprintf("prctl(PR_CAPBSET_DROP, %d)", last+1), unix.PR_CAPBSET_DROP, uintptr(last+1))
	f.Errno = errnoName(e)
	switch {
	case e == unix.EINVAL:
		f.Status, f.Errno = Available, ""
		f.Detail = fmt.Sprintf("bounding-set drops permitted: dropping capability %d (one past cap_last_cap) passed the CAP_SETPCAP and LSM checks and failed only as invalid (EINVAL)", last+1)
		return f, DropPermitted
	case e == unix.EPERM && creds.CapEff.Has(CapSetpcap):
		f.Status = Unavailable
		f.Detail = "bounding-set drops denied (EPERM) although CAP_SETPCAP is in the effective set: an LSM (such as AppArmor) or a seccomp filter forbids them"
		return f, DropDeniedDespiteCap
	case e == unix.EPERM:
		f.Status = Unavailable
		f.Detail = "bounding-set drops denied (EPERM): CAP_SETPCAP is not in the effective set"
		return f, DropNoSetpcap
	}
	f.Status = Unknown
	f.Detail = fmt.Sprintf("unexpected answer to a drop of capability %d: %s", last+1, outcome(r, e))
	return f, DropUnknown
}

func noNewPrivs(creds *Creds) Facility {
	f := Facility{Name: FacilityNoNewPrivs, Evidence: map[string]string{}}
	r, e := prctl(f.Evidence, "prctl(PR_GET_NO_NEW_PRIVS)", unix.PR_GET_NO_NEW_PRIVS, 0)
	if e != 0 {
		f.Status, f.Errno = Unavailable, errnoName(e)
		f.Detail = fmt.Sprintf("the kernel does not know no_new_privs (%s from PR_GET_NO_NEW_PRIVS; it needs Linux 3.5)", f.Errno)
		return f
	}
	creds.NoNewPrivs = r == 1
	f.Status = Available
	if creds.NoNewPrivs {
		f.Detail = "already set on this process (inherited): execve can grant the workload no privileges"
	} else {
		f.Detail = "not set yet; the supervisor can set it for the workload with prctl(PR_SET_NO_NEW_PRIVS), which the kernel grants any process"
	}
	return f
}

// landlockFeatures names what each Landlock ABI version added.
const landlockFeatures = "filesystem access;file reparenting (refer);truncate;TCP bind and connect;" +
	"device ioctl;abstract unix socket and signal scoping;audit logging;restricting all threads (tsync)"

func landlock() (f Facility, abi int, errata *uint64) {
	f = Facility{Name: FacilityLandlock, Evidence: map[string]string{}}
	r, e := syscallEv(f.Evidence, "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)",
		unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	f.Errno = errnoName(e)
	switch e {
	case 0:
		f.Errno = ""
	case unix.ENOSYS:
		f.Status, f.Detail = Unavailable, "not in this kernel (ENOSYS): built without CONFIG_SECURITY_LANDLOCK, or older than 5.13"
		return f, 0, nil
	case unix.EOPNOTSUPP:
		f.Status, f.Detail = Unavailable, "compiled in but disabled at boot (EOPNOTSUPP): landlock is missing from the lsm= boot parameter"
		return f, 0, nil
	case unix.EPERM:
		f.Status, f.Detail = Unavailable, "blocked by a seccomp filter or an LSM (EPERM)"
		return f, 0, nil
	default:
		f.Status, f.Detail = Unknown, fmt.Sprintf("unexpected answer to the ABI version query: %s", f.Errno)
		return f, 0, nil
	}
	abi = int(r)
	features := strings.Split(landlockFeatures, ";")
	f.Status = Available
	f.Detail = fmt.Sprintf("ABI %d: %s", abi, strings.Join(features[:min(abi, len(features))], ", "))
	if abi > len(features) {
		f.Detail += fmt.Sprintf(", and what ABI %d..%d added", len(features)+1, abi)
	}
	er, ee := syscallEv(f.Evidence, "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_ERRATA)",
		unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
	if ee == 0 {
		v := uint64(er)
		errata = &v
		f.Detail += fmt.Sprintf("; errata fixed: %#x", v)
	} else {
		f.Detail += fmt.Sprintf("; errata unknown (%s: the kernel cannot report them)", errnoName(ee))
	}
	return f, abi, errata
}

func seccomp(creds *Creds) (f Facility, actions, flags []string) {
	f = Facility{Name: FacilitySeccomp, Evidence: map[string]string{}}
	if b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		f.Evidence["/proc/sys/kernel/seccomp/actions_avail"] = strings.TrimSpace(string(b))
	}
	mode, modeErr := prctl(f.Evidence, "prctl(PR_GET_SECCOMP)", unix.PR_GET_SECCOMP, 0)
	if modeErr == 0 {
		creds.SeccompMode = int(mode)
	}
	// A NULL program makes both calls fail with EFAULT after the mode
	// and flags are accepted and before anything is installed.
	_, prctlErr := prctl(f.Evidence, "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL)", unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER)
	_, base := syscallEv(f.Evidence, "seccomp(SECCOMP_SET_MODE_FILTER, 0, NULL)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, 0)
	if base != unix.EFAULT {
		f.Status, f.Errno = Unavailable, errnoName(base)
		switch {
		case prctlErr == unix.EFAULT:
			// Linux 3.5 to 3.16: filters only through prctl.
			f.Status = Partial
			f.Detail = fmt.Sprintf("filter mode only through prctl (%s from seccomp(2)): no TSYNC, no logging, no user notification", f.Errno)
		case base == unix.ENOSYS:
			f.Detail = fmt.Sprintf("not in this kernel (ENOSYS from seccomp(2), %s from prctl(PR_SET_SECCOMP)): built without CONFIG_SECCOMP", errnoName(prctlErr))
		case base == unix.EINVAL:
			f.Detail = "filter mode not supported (EINVAL): built without CONFIG_SECCOMP_FILTER"
		case base == unix.EPERM || base == unix.EACCES:
			f.Detail = fmt.Sprintf("blocked by a seccomp filter or an LSM (%s)", f.Errno)
		default:
			f.Status, f.Detail = Unknown, fmt.Sprintf("unexpected answer to a filter install with no program: %s", f.Errno)
		}
		return f, nil, nil
	}
	var missing []string
	for _, a := range []struct {
		name  string
		value uint32
	}{
		{"kill_process", unix.SECCOMP_RET_KILL_PROCESS}, {"kill_thread", unix.SECCOMP_RET_KILL_THREAD},
		{"trap", unix.SECCOMP_RET_TRAP}, {"errno", unix.SECCOMP_RET_ERRNO},
		{"user_notif", unix.SECCOMP_RET_USER_NOTIF}, {"trace", unix.SECCOMP_RET_TRACE},
		{"log", unix.SECCOMP_RET_LOG}, {"allow", unix.SECCOMP_RET_ALLOW},
	} {
		v := a.value
		_, e := syscallEv(f.Evidence, "seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &SECCOMP_RET_"+strings.ToUpper(a.name)+")",
			unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&v)))
		if e == 0 {
			actions = append(actions, a.name)
		} else {
			missing = append(missing, "action "+a.name)
		}
	}
	for _, fl := range []struct {
		name  string
		value uintptr
	}{
		{"tsync", unix.SECCOMP_FILTER_FLAG_TSYNC}, {"log", unix.SECCOMP_FILTER_FLAG_LOG},
		{"spec_allow", unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW}, {"new_listener", unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
		{"tsync_esrch", unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH},
		{"wait_killable_recv", unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
	} {
		key := "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_" + strings.ToUpper(fl.name) + ", NULL)"
		if fl.name == "wait_killable_recv" {
			key = "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV|SECCOMP_FILTER_FLAG_NEW_LISTENER, NULL)"
		}
		if _, e := syscallEv(f.Evidence, key, unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, fl.value, 0); e == unix.EFAULT {
			flags = append(flags, fl.name)
		} else {
			missing = append(missing, "flag "+fl.name)
		}
	}
	var sizes [3]uint16
	if _, e := syscallEv(f.Evidence, "seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes)", unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&sizes))); e == 0 {
		f.Evidence["seccomp(SECCOMP_GET_NOTIF_SIZES) sizes"] = fmt.Sprintf("seccomp_notif %d, seccomp_notif_resp %d, seccomp_data %d", sizes[0], sizes[1], sizes[2])
	}

	f.Status = Available
	f.Detail = fmt.Sprintf("filter mode with actions %s and flags %s", strings.Join(actions, " "), strings.Join(flags, " "))
	if len(missing) > 0 {
		f.Status = Partial
		f.Detail += "; missing " + strings.Join(missing, ", ")
	}
	if creds.SeccompMode == unix.SECCOMP_MODE_FILTER {
		n := "some"
		if creds.SeccompFilters >= 0 {
			n = strconv.Itoa(creds.SeccompFilters)
		}
		f.Detail += fmt.Sprintf("; this process already runs under %s filter(s), which new ones stack on", n)
	}
	return f, actions, flags
}

// prctl calls prctl(option, arg) and records it in ev under key.
func prctl(ev map[string]string, key string, option, arg uintptr) (uintptr, syscall.Errno) {
	return syscallEv(ev, key, unix.SYS_PRCTL, option, arg, 0)
}

// syscallEv makes a raw system call and records its outcome in ev under
// key.
func syscallEv(ev map[string]string, key string, nr, a0, a1, a2 uintptr) (uintptr, syscall.Errno) {
	r, _, e := unix.Syscall6(nr, a0, a1, a2, 0, 0, 0)
	ev[key] = outcome(r, e)
	return r, e
}

// outcome is the evidence form of a call's result: its errno's name, or
// its return value in decimal.
func outcome(r uintptr, e syscall.Errno) string {
	if e != 0 {
		return errnoName(e)
	}
	return strconv.FormatUint(uint64(r), 10)
}

// errnoName names e, preferring EOPNOTSUPP to its alias ENOTSUP (the name
// Landlock and seccomp document), and "" for no error.
func errnoName(e syscall.Errno) string {
	switch e {
	case 0:
		return ""
	case unix.EOPNOTSUPP:
		return "EOPNOTSUPP"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// errOutcome is the evidence form of an error: its errno's name when it
// has one, else its text.
func errOutcome(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return errnoName(e)
	}
	return err.Error()
}

// readEvidence reads a small file, records its trimmed content (or the
// error) in ev under its path, and returns it.
func readEvidence(ev map[string]string, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		ev[path] = errOutcome(err)
		return "", err
	}
	s := strings.TrimSpace(string(b))
	ev[path] = s
	return s, nil
}
