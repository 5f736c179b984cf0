package confine

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// landlockMaxABI is the highest Landlock ABI whose features this package
// uses: 7 added the audit-log flags of landlock_restrict_self. A newer
// kernel is used with these features.
const landlockMaxABI = 7

// right is a Landlock access right or scope and the ABI that added it.
type right struct {
	bit  uint64
	name string
	abi  int
}

var (
	fsRights = []right{
		{unix.LANDLOCK_ACCESS_FS_EXECUTE, "execute", 1},
		{unix.LANDLOCK_ACCESS_FS_WRITE_FILE, "write_file", 1},
		{unix.LANDLOCK_ACCESS_FS_READ_FILE, "read_file", 1},
		{unix.LANDLOCK_ACCESS_FS_READ_DIR, "read_dir", 1},
		{unix.LANDLOCK_ACCESS_FS_REMOVE_DIR, "remove_dir", 1},
		{unix.LANDLOCK_ACCESS_FS_REMOVE_FILE, "remove_file", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_CHAR, "make_char", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_DIR, "make_dir", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_REG, "make_reg", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_SOCK, "make_sock", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_FIFO, "make_fifo", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK, "make_block", 1},
		{unix.LANDLOCK_ACCESS_FS_MAKE_SYM, "make_sym", 1},
		{unix.LANDLOCK_ACCESS_FS_REFER, "refer", 2},
		{unix.LANDLOCK_ACCESS_FS_TRUNCATE, "truncate", 3},
		{unix.LANDLOCK_ACCESS_FS_IOCTL_DEV, "ioctl_dev", 5},
	}
	netRights = []right{
		{unix.LANDLOCK_ACCESS_NET_BIND_TCP, "bind_tcp", 4},
		{unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, "connect_tcp", 4},
	}
	scopeRights = []right{
		{unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, "scope_abstract_unix", 6},
		{unix.LANDLOCK_SCOPE_SIGNAL, "scope_signal", 6},
	}
)

// The rights each policy list grants beneath its paths. Read-write leaves
// out making device nodes; execute needs read too (the policy checks it).
const (
	fsRead  = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	fsWrite = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_FILE | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_SYM |
		unix.LANDLOCK_ACCESS_FS_REFER | unix.LANDLOCK_ACCESS_FS_TRUNCATE |
		unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	fsExec = unix.LANDLOCK_ACCESS_FS_EXECUTE
	// fsFile are the rights that apply to a file (not a directory): a rule
	// on a file with any other right is refused with EINVAL.
	fsFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE |
		unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// landlockPlan is what a policy becomes on a kernel of a given ABI.
type landlockPlan struct {
	abi             int
	fs, net, scoped uint64   // handled rights and scopes
	dropped         []string // "refer (ABI 2)": asked for, not in this ABI
}

// planLandlock applies go-landlock's compatibility rule: every file system
// right and TCP right this package knows is handled (so what no rule
// allows is denied), scopes as p asks; those the ABI lacks are left out
// and named in dropped.
func planLandlock(p policy.Landlock, abi int) landlockPlan {
	pl := landlockPlan{abi: abi}
	take := func(rights []right, want func(right) bool) uint64 {
		var m uint64
		for _, r := range rights {
			switch {
			case !want(r):
			case r.abi <= abi:
				m |= r.bit
			default:
				pl.dropped = append(pl.dropped, fmt.Sprintf("%s (ABI %d)", r.name, r.abi))
			}
		}
		return m
	}
	all := func(right) bool { return true }
	pl.fs = take(fsRights, all)
	pl.net = take(netRights, all)
	pl.scoped = take(scopeRights, func(r right) bool {
		return r.bit == unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET && p.Scope.AbstractUnix ||
			r.bit == unix.LANDLOCK_SCOPE_SIGNAL && p.Scope.Signal
	})
	return pl
}

// pathRules merges the policy's lists into one access mask per path.
func pathRules(p policy.Landlock) map[string]uint64 {
	rules := map[string]uint64{}
	for _, l := range []struct {
		paths  []string
		access uint64
	}{{p.ReadOnly, fsRead}, {p.ReadWrite, fsRead | fsWrite}, {p.Execute, fsExec}} {
		for _, path := range l.paths {
			rules[path] |= l.access
		}
	}
	return rules
}

func landlockRequested(p policy.Landlock) string {
	var scope []string
	if p.Scope.AbstractUnix {
		scope = append(scope, "abstract_unix")
	}
	if p.Scope.Signal {
		scope = append(scope, "signal")
	}
	ports := func(v []uint16) string {
		s := make([]string, len(v))
		for i, p := range v {
			s[i] = strconv.Itoa(int(p))
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("ABI>=%d ro=[%s] rw=[%s] x=[%s] bind_tcp=[%s] connect_tcp=[%s] scope=[%s]",
		p.MinABI, strings.Join(p.ReadOnly, " "), strings.Join(p.ReadWrite, " "), strings.Join(p.Execute, " "),
		ports(p.BindTCP), ports(p.ConnectTCP), strings.Join(scope, " "))
}

// rulesetAttr is struct landlock_ruleset_attr up to ABI 7.
type rulesetAttr struct {
	fs, net, scoped uint64
}

// size is the part of the struct the kernel of abi knows.
func (a *rulesetAttr) size(abi int) uintptr {
	switch {
	case abi >= 6:
		return 24
	case abi >= 4:
		return 16
	}
	return 8
}

// landlockRuleNetPort is LANDLOCK_RULE_NET_PORT (ABI 4).
const landlockRuleNetPort = 2

// netPortAttr is struct landlock_net_port_attr.
type netPortAttr struct {
	allowed uint64
	port    uint64
}

// landlockDetail explains a Landlock errno.
func landlockDetail(call string, err error) string {
	switch errnoName(err) {
	case "ENOSYS":
		return call + ": Landlock is not in this kernel (built without CONFIG_SECURITY_LANDLOCK, or older than 5.13)"
	case "EOPNOTSUPP":
		return call + ": Landlock is compiled in but disabled at boot (not in lsm=)"
	case "EPERM":
		return call + ": refused: the thread has neither no_new_privs nor CAP_SYS_ADMIN, or seccomp or an LSM blocked the call"
	}
	return fmt.Sprintf("%s: %v", call, err)
}

// landlockABI asks the kernel for its Landlock ABI version.
func landlockABI() (int, error) {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}

// LandlockRuleset is a Landlock ruleset built for the running kernel and
// not yet enforced. It holds a file descriptor until Restrict or Close.
type LandlockRuleset struct {
	open     bool // fd is the ruleset's; false in a zero LandlockRuleset
	fd       int
	plan     landlockPlan
	rootRule bool // a rule grants read_dir on / itself: the probe cannot use it
	step     Step
}

// PrepareLandlock builds a ruleset for p on the best ABI the kernel has
// (probed with LANDLOCK_CREATE_RULESET_VERSION), opening each path with
// O_PATH|O_CLOEXEC: call it while still privileged, so that paths the
// workload's uid cannot reach still get their rules, and Restrict later.
//
// The step it returns describes the ruleset: Failed with a nil ruleset
// when Landlock is unavailable (ENOSYS: not in the kernel; EOPNOTSUPP:
// disabled at boot; EPERM: blocked), when the ABI is below p.MinABI and p
// is required, or when a path cannot be opened and p is required; Skipped
// with a nil ruleset when p is off; otherwise Applied, or Partial when
// rights the ABI lacks were left out, the ABI is below p.MinABI (best
// effort) or a path was skipped (best effort), each named in Detail.
// Nothing is enforced until Restrict, whose step is the one to report.
func PrepareLandlock(p policy.Landlock) (*LandlockRuleset, Step) {
	s := newStep(policy.ControlLandlock, "", landlockRequested(p))
	s.Effective = "not enforced"
	if p.Mode == policy.Off {
		s.Outcome, s.Detail = Skipped, "mode off: no Landlock ruleset"
		return nil, s
	}
	abi, err := landlockABI()
	s.Evidence["syscall"] = "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)"
	if err != nil {
		s.Effective = "Landlock unavailable"
		s.fail(err, "%s", landlockDetail("landlock_create_ruleset", err))
		return nil, s
	}
	s.Evidence["abi"] = strconv.Itoa(abi)
	var notes []string
	if abi < p.MinABI {
		if p.Mode == policy.Required {
			s.fail(nil, "the kernel's Landlock ABI %d is below min_abi %d", abi, p.MinABI)
			return nil, s
		}
		notes = append(notes, fmt.Sprintf("the kernel's Landlock ABI %d is below min_abi %d", abi, p.MinABI))
	}
	pl := planLandlock(p, min(abi, landlockMaxABI))
	if len(pl.dropped) > 0 {
		notes = append(notes, fmt.Sprintf("left out, not in ABI %d: %s", abi, strings.Join(pl.dropped, ", ")))
	}
	attr := rulesetAttr{fs: pl.fs, net: pl.net, scoped: pl.scoped}
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), attr.size(abi), 0)
	s.Evidence["syscall"] = fmt.Sprintf("landlock_create_ruleset({fs=%#x net=%#x scoped=%#x}, %d, 0)", pl.fs, pl.net, pl.scoped, attr.size(abi))
	if e != 0 {
		s.fail(e, "%s", landlockDetail("landlock_create_ruleset", e))
		return nil, s
	}
	r := &LandlockRuleset{open: true, fd: int(fd), plan: pl}
	rules := pathRules(p)
	var skipped []string
	nPaths := 0
	for _, path := range slices.Sorted(maps.Keys(rules)) {
		err := r.addPath(path, rules[path])
		if err == nil {
			nPaths++
			continue
		}
		if p.Mode == policy.Required {
			r.Close()
			s.fail(err, "%s: required, so no ruleset (set best_effort to skip missing paths)", err)
			return nil, s
		}
		skipped = append(skipped, err.Error())
	}
	if len(skipped) > 0 {
		notes = append(notes, "rules skipped: "+strings.Join(skipped, "; "))
	}
	nPorts := 0
	if pl.net != 0 {
		for _, pr := range []struct {
			ports  []uint16
			access uint64
		}{{p.BindTCP, unix.LANDLOCK_ACCESS_NET_BIND_TCP}, {p.ConnectTCP, unix.LANDLOCK_ACCESS_NET_CONNECT_TCP}} {
			for _, port := range pr.ports {
				a := netPortAttr{allowed: pr.access, port: uint64(port)}
				if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, landlockRuleNetPort, uintptr(unsafe.Pointer(&a)), 0, 0, 0); e != 0 {
					r.Close()
					s.fail(e, "%s", landlockDetail(fmt.Sprintf("landlock_add_rule(port %d)", port), e))
					return nil, s
				}
				nPorts++
			}
		}
	}
	s.Evidence["handled_access_fs"] = fmt.Sprintf("%#x", pl.fs)
	s.Evidence["handled_access_net"] = fmt.Sprintf("%#x", pl.net)
	s.Evidence["scoped"] = fmt.Sprintf("%#x", pl.scoped)
	s.Evidence["path_rules"] = strconv.Itoa(nPaths)
	s.Evidence["port_rules"] = strconv.Itoa(nPorts)
	s.Effective = fmt.Sprintf("ABI %d ruleset: fs=%#x net=%#x scoped=%#x, %d path rules, %d port rules; not yet enforced", abi, pl.fs, pl.net, pl.scoped, nPaths, nPorts)
	s.Outcome = Applied
	if len(notes) > 0 {
		s.Outcome, s.Detail = Partial, strings.Join(notes, "; ")
	}
	r.rootRule = rules["/"]&unix.LANDLOCK_ACCESS_FS_READ_DIR != 0
	r.step = s
	return r, s
}

// addPath adds a path-beneath rule; directory-only rights are left out
// for a file.
func (r *LandlockRuleset) addPath(path string, access uint64) error {
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		access &= fsFile
	}
	access &= r.plan.fs
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(r.fd), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("landlock_add_rule(%s, %#x): %w", path, access, e)
	}
	return nil
}

// Close releases the ruleset without enforcing it. It is safe to call more
// than once and after Restrict.
func (r *LandlockRuleset) Close() {
	if r != nil && r.open {
		unix.Close(r.fd)
		r.open = false
	}
}

// Restrict enforces the ruleset on the calling thread with
// landlock_restrict_self. On ABI 7 and later it asks for
// LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON, so that the denials of the
// program the thread execs are logged (go-landlock's
// EnableLoggingForSubprocesses), and LOG_SAME_EXEC_OFF, so that the
// helper's own are not. It needs no_new_privs (or CAP_SYS_ADMIN).
//
// It then proves the domain is in force: unless a rule covers / itself,
// opening / for listing must fail with EACCES. Effective names the ABI
// used, the handled rights and "enforced". The step is Failed when the
// kernel refused (EPERM: no no_new_privs, or seccomp or an LSM), Partial
// when PrepareLandlock's was, Applied otherwise. The ruleset is closed
// either way; a nil ruleset gives a Failed step.
func (r *LandlockRuleset) Restrict() Step {
	if r == nil || !r.open {
		s := newStep(policy.ControlLandlock, "", "a prepared ruleset")
		s.Effective = "not enforced"
		s.fail(nil, "no Landlock ruleset to enforce (PrepareLandlock failed or was skipped, or the ruleset was already used)")
		return s
	}
	defer r.Close()
	s := r.step
	s.Evidence = maps.Clone(r.step.Evidence)
	// From ABI 7: log the denials of the programs this thread execs, not
	// its own (the probe below is denied on purpose).
	var flags uintptr
	if r.plan.abi >= 7 {
		flags = unix.LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON | unix.LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
	}
	_, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(r.fd), flags, 0)
	if e == unix.EINVAL && flags != 0 {
		s.Evidence["log_flags_error"] = "EINVAL"
		flags = 0
		_, _, e = unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(r.fd), 0, 0)
	}
	s.Evidence["syscall"] = fmt.Sprintf("landlock_restrict_self(ruleset, %#x)", flags)
	if e != 0 {
		s.Effective = "not enforced"
		s.fail(e, "%s", landlockDetail("landlock_restrict_self", e))
		return s
	}
	log := "the workload's denials are logged (LOG_NEW_EXEC_ON; the helper's own are not: LOG_SAME_EXEC_OFF)"
	if flags == 0 {
		log = "the workload's denials are not logged (no LOG_NEW_EXEC_ON before ABI 7)"
	}
	pl := r.plan
	s.Effective = fmt.Sprintf("ABI %d, handled fs=%#x net=%#x scoped=%#x, enforced", pl.abi, pl.fs, pl.net, pl.scoped)
	if !r.rootRule {
		fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			unix.Close(fd)
			s.Evidence["probe"] = "open(/, O_RDONLY|O_DIRECTORY) succeeded"
			s.Effective = fmt.Sprintf("ABI %d: landlock_restrict_self returned 0 but / can still be listed", pl.abi)
			s.fail(nil, "the Landlock domain is not in force on this thread")
			return s
		default:
			s.Evidence["probe"] = "open(/, O_RDONLY|O_DIRECTORY) = " + errnoName(err)
			if err == unix.EACCES {
				s.Effective += " (open / denied: EACCES)"
			}
		}
	}
	if s.Outcome != Partial {
		s.Outcome = Applied
	}
	if s.Detail != "" {
		s.Detail += "; "
	}
	s.Detail += log
	return s
}
