package policy

import (
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Mode says how a control is enforced. The zero value means "the default
// mode of this control" (see the package documentation); [Policy.Resolve]
// replaces it, so a resolved policy never holds a zero Mode.
type Mode string

const (
	// Required: the control applies as written or the sandbox does not
	// start (fail closed).
	Required Mode = "required"
	// BestEffort: the control applies as far as the host allows; anything
	// less than asked is reported as degraded, never silently accepted.
	BestEffort Mode = "best_effort"
	// Off: the control is not applied, and that is reported as disabled.
	Off Mode = "off"
)

func (m Mode) valid() bool { return m == Required || m == BestEffort || m == Off }

// Control names a control. The strings are the compliance.control values of
// sandtrail's events.
type Control string

const (
	ControlNamespaces            Control = "namespaces"
	ControlCapabilityBoundingSet Control = "capability_bounding_set"
	ControlPrivilegeDrop         Control = "privilege_drop"
	ControlCapabilities          Control = "capabilities"
	ControlRlimits               Control = "rlimits"
	ControlCoreDump              Control = "core_dump"
	ControlNoNewPrivs            Control = "no_new_privs"
	ControlLandlock              Control = "landlock"
	ControlSeccomp               Control = "seccomp"
)

// Controls returns every control in the order runc, nsjail and bubblewrap
// apply them: namespaces, bounding set, setgroups/setgid/setuid, the
// remaining capability sets, rlimits, core dumps (after the uid switch,
// which resets the dumpable flag), no_new_privs, Landlock, seccomp last.
// String and YAML list the controls in this order.
func Controls() []Control {
	return []Control{
		ControlNamespaces, ControlCapabilityBoundingSet, ControlPrivilegeDrop,
		ControlCapabilities, ControlRlimits, ControlCoreDump, ControlNoNewPrivs,
		ControlLandlock, ControlSeccomp,
	}
}

// Policy is a sandbox policy: a name, a version and one setting per control.
//
// Treat a Policy as an immutable value: [Parse], [Load], [Default] and
// [Policy.Resolve] return values that share nothing with any other Policy,
// and nothing in this package caches state derived from the fields.
//
// A control left as its zero value means the default control. A control
// with any field set is taken as written, except that a zero Mode becomes
// the control's default mode and fields whose zero value is meaningless
// (Seccomp.Profile, Landlock.MinABI, PrivilegeDrop.User and Group) get
// their defaults; lists, maps and booleans are never filled in. A policy
// file works the same way one level down: a key that is present replaces
// the default value of that parameter entirely, an absent key keeps it.
type Policy struct {
	Name    string // policy.name and process.sandbox in events; required
	Version string // policy.version in events; free text, may be empty

	Namespaces            Namespaces
	CapabilityBoundingSet CapabilityBoundingSet
	PrivilegeDrop         PrivilegeDrop
	Capabilities          Capabilities
	Rlimits               Rlimits
	CoreDump              CoreDump
	NoNewPrivs            NoNewPrivs
	Landlock              Landlock
	Seccomp               Seccomp
}

// Namespaces says which new namespaces the sandboxed process gets.
// Default: best_effort, every kind on. Creating namespaces needs
// CAP_SYS_ADMIN or a new user namespace, which a host may forbid
// (user.max_user_namespaces=0, an LSM), so the default degrades visibly.
// Net on means no network (only a loopback that is down): strict by default,
// turn it off for workloads that need the host's network.
type Namespaces struct {
	Mode   Mode
	User   bool // CLONE_NEWUSER; lets an unprivileged supervisor create the others
	PID    bool // CLONE_NEWPID
	Mount  bool // CLONE_NEWNS
	IPC    bool // CLONE_NEWIPC
	UTS    bool // CLONE_NEWUTS
	Net    bool // CLONE_NEWNET
	Cgroup bool // CLONE_NEWCGROUP
}

// Kinds returns the names of the namespace kinds that are on, in a fixed
// order (user, pid, mount, ipc, uts, net, cgroup): one check each in events.
func (n Namespaces) Kinds() []string {
	var out []string
	for _, k := range namespaceKinds {
		if *k.field(&n) {
			out = append(out, k.name)
		}
	}
	return out
}

var namespaceKinds = []struct {
	name  string
	field func(*Namespaces) *bool
}{
	{"user", func(n *Namespaces) *bool { return &n.User }},
	{"pid", func(n *Namespaces) *bool { return &n.PID }},
	{"mount", func(n *Namespaces) *bool { return &n.Mount }},
	{"ipc", func(n *Namespaces) *bool { return &n.IPC }},
	{"uts", func(n *Namespaces) *bool { return &n.UTS }},
	{"net", func(n *Namespaces) *bool { return &n.Net }},
	{"cgroup", func(n *Namespaces) *bool { return &n.Cgroup }},
}

// CapabilityBoundingSet limits the capabilities the process and its
// descendants can ever gain. Default: best_effort, keep none. Dropping from
// the bounding set needs CAP_SETPCAP, which an unprivileged supervisor
// lacks; with no_new_privs on nothing can be gained anyway, but scanners
// flag a non-empty bounding set, so the shortfall is reported.
type CapabilityBoundingSet struct {
	Mode Mode
	Keep []Capability // capabilities left in the bounding set; default none
}

// Capabilities are the effective, permitted, inheritable and ambient sets
// after the uid switch. Default: required, keep none. Lowering one's own
// sets needs no privilege, so this works unprivileged too. A kept
// capability is raised in all four sets (ambient, so it survives execve as
// a non-root uid) and must also be kept in the bounding set.
type Capabilities struct {
	Mode Mode
	Keep []Capability // default none
}

// PrivilegeDrop is setgroups, setgid and setuid before the workload runs.
// Default: best_effort, user 65534 and group 65534 (nobody/nogroup, as
// numbers so the policy does not depend on /etc/passwd), no supplementary
// groups, when_unprivileged keep: a root supervisor switches to 65534; an
// unprivileged one keeps its own uid and gid, which needs no privilege and
// leaves nothing to drop. Switching needs CAP_SETUID and CAP_SETGID, which a
// capability-restricted root may lack, hence best_effort.
type PrivilegeDrop struct {
	Mode Mode
	// User to run as: a name or a decimal uid, never 0 or root. Default
	// "65534". User and Group are set together.
	User string
	// Group to run as: a name or a decimal gid, never 0 or root. Default
	// "65534".
	Group string
	// SupplementaryGroups after setgroups: names or decimal gids, never 0
	// or root. Default none (setgroups with an empty list).
	SupplementaryGroups []string
	// WhenUnprivileged says what a supervisor not running as uid 0 does.
	// Default: keep when User and Group are both left to their defaults,
	// switch when the policy names them.
	WhenUnprivileged Unprivileged
}

// Unprivileged is what an unprivileged supervisor does about PrivilegeDrop.
type Unprivileged string

const (
	// UnprivilegedKeep keeps the supervisor's own uid, gid and
	// supplementary groups (setgroups needs CAP_SETGID): already
	// unprivileged, nothing to drop.
	UnprivilegedKeep Unprivileged = "keep"
	// UnprivilegedSwitch switches to User and Group anyway, which fails
	// without CAP_SETUID/CAP_SETGID unless they are the current ids.
	UnprivilegedSwitch Unprivileged = "switch"
)

// NoNewPrivs is prctl(PR_SET_NO_NEW_PRIVS). Default: required: any process
// can set it, and it stops setuid binaries and file capabilities from
// raising privileges.
type NoNewPrivs struct {
	Mode Mode
}

// Seccomp is the system call filter. Default: required, profile "default"
// ([DefaultSeccompProfile]): any process with no_new_privs can install a
// filter.
type Seccomp struct {
	Mode Mode
	// Profile is "default" for the built-in profile or the path of an
	// OCI/Docker seccomp JSON profile, relative to the policy file's
	// directory. Default "default".
	Profile string
	// DefaultAction overrides the profile's defaultAction (an SCMP_ACT_*
	// name). Default "": the profile's own.
	DefaultAction SeccompAction
	// LogDenials sets SECCOMP_FILTER_FLAG_LOG (every action but allow is
	// logged by the kernel). Default false: the default profile answers
	// clone3 with ENOSYS on every thread creation by design, which would
	// flood the kernel log.
	LogDenials bool
	// Loaded is the profile Profile names, read and validated by [Parse]
	// and [Load]; [Policy.Resolve] fills it for "default". Its SHA-256 is
	// part of [Policy.Canonical], so the policy UID changes when the
	// profile's content does.
	Loaded *SeccompProfile
}

// Effective returns the loaded profile with DefaultAction applied, or nil
// when no profile is loaded. The result is a copy.
func (s Seccomp) Effective() *SeccompProfile {
	if s.Loaded == nil {
		return nil
	}
	p := s.Loaded.clone()
	if s.DefaultAction != "" {
		p.DefaultAction = s.DefaultAction
	}
	return p
}

// Landlock restricts filesystem and TCP access (landlock_restrict_self).
// Default: required: any process can restrict itself on a kernel with
// Landlock. Rights the kernel's ABI lacks (TCP ports need ABI 4, scopes
// ABI 6) are left out and reported as degraded.
type Landlock struct {
	Mode Mode
	// ReadOnly paths (and what is beneath them) can be read and listed.
	// Default: /bin, /etc, /lib, /proc, /sbin, /usr and the devices
	// /dev/random, /dev/urandom, /dev/zero: what dynamically linked
	// programs need to start. Absolute paths only.
	ReadOnly []string
	// ReadWrite paths can also be written, created and removed. Default:
	// /dev/null only (no /tmp: strict; add a work directory).
	ReadWrite []string
	// Execute paths can be executed; each must also be readable (execve
	// needs the read right too). Default: /bin, /lib, /sbin, /usr.
	Execute []string
	// BindTCP and ConnectTCP are the TCP ports that may be bound and
	// connected to (ABI 4). Default none: no TCP at all.
	BindTCP    []uint16
	ConnectTCP []uint16
	// Scope isolates the sandbox from outside abstract unix sockets and
	// signals (ABI 6). Default both on.
	Scope LandlockScope
	// MinABI is the lowest Landlock ABI that counts as applied. Default 1:
	// the filesystem rules work on every kernel with Landlock (5.13+).
	MinABI int
}

// LandlockScope is Landlock's scoping (LANDLOCK_SCOPE_*).
type LandlockScope struct {
	AbstractUnix bool // no connecting to abstract unix sockets outside the sandbox
	Signal       bool // no signalling processes outside the sandbox
}

// Rlimits are resource limits set with setrlimit. Default: best_effort,
// nofile 1024 soft / 4096 hard (the kernel's own defaults). Lowering a limit
// needs no privilege, but a hard limit can never be raised without
// CAP_SYS_RESOURCE, so a host with lower limits degrades rather than fails.
// nproc is left out of the default: it counts every process of the uid, not
// only the sandbox's.
type Rlimits struct {
	Mode Mode
	// Limits by lower-case name without RLIMIT_ (as, core, cpu, data,
	// fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio,
	// rttime, sigpending, stack).
	Limits map[string]Limit
}

// Limit is a soft and a hard resource limit; Unlimited is RLIM_INFINITY.
type Limit struct {
	Soft, Hard uint64
}

// Unlimited is RLIM_INFINITY, written "unlimited" in policy files.
const Unlimited = ^uint64(0)

var rlimitResources = map[string]int{
	"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5,
	"nproc": 6, "nofile": 7, "memlock": 8, "as": 9, "locks": 10,
	"sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15,
}

// RlimitResource returns the RLIMIT_* number of a limit name such as
// "nofile", and whether the name is known.
func RlimitResource(name string) (int, bool) {
	r, ok := rlimitResources[name]
	return r, ok
}

// CoreDump turns core dumps off: RLIMIT_CORE 0 and not dumpable. Default:
// required: both need no privilege, and a core file of a sandboxed process
// can leak what it read.
type CoreDump struct {
	Mode Mode
}

// Mode returns the mode of control c, or "" for an unknown control.
func (p *Policy) Mode(c Control) Mode {
	switch c {
	case ControlNamespaces:
		return p.Namespaces.Mode
	case ControlCapabilityBoundingSet:
		return p.CapabilityBoundingSet.Mode
	case ControlPrivilegeDrop:
		return p.PrivilegeDrop.Mode
	case ControlCapabilities:
		return p.Capabilities.Mode
	case ControlRlimits:
		return p.Rlimits.Mode
	case ControlCoreDump:
		return p.CoreDump.Mode
	case ControlNoNewPrivs:
		return p.NoNewPrivs.Mode
	case ControlLandlock:
		return p.Landlock.Mode
	case ControlSeccomp:
		return p.Seccomp.Mode
	}
	return ""
}

// DefaultName and DefaultVersion identify the built-in policy; the version
// changes whenever a default does.
const (
	DefaultName    = "default"
	DefaultVersion = "1"
)

// Default returns the built-in policy: strict, and able to run both as root
// and as an unprivileged user. What needs privilege (namespaces, the
// bounding-set drop, the switch to another uid) is best_effort and degrades
// visibly; what any process can do to itself (capabilities, no_new_privs,
// Landlock, seccomp, core dumps) is required.
func Default() *Policy {
	return &Policy{
		Name:    DefaultName,
		Version: DefaultVersion,
		Namespaces: Namespaces{Mode: BestEffort,
			User: true, PID: true, Mount: true, IPC: true, UTS: true, Net: true, Cgroup: true},
		CapabilityBoundingSet: CapabilityBoundingSet{Mode: BestEffort, Keep: []Capability{}},
		PrivilegeDrop: PrivilegeDrop{Mode: BestEffort, User: "65534", Group: "65534",
			SupplementaryGroups: []string{}, WhenUnprivileged: UnprivilegedKeep},
		Capabilities: Capabilities{Mode: Required, Keep: []Capability{}},
		Rlimits:      Rlimits{Mode: BestEffort, Limits: map[string]Limit{"nofile": {Soft: 1024, Hard: 4096}}},
		CoreDump:     CoreDump{Mode: Required},
		NoNewPrivs:   NoNewPrivs{Mode: Required},
		Landlock: Landlock{
			Mode:       Required,
			ReadOnly:   []string{"/bin", "/dev/random", "/dev/urandom", "/dev/zero", "/etc", "/lib", "/proc", "/sbin", "/usr"},
			ReadWrite:  []string{"/dev/null"},
			Execute:    []string{"/bin", "/lib", "/sbin", "/usr"},
			BindTCP:    []uint16{},
			ConnectTCP: []uint16{},
			Scope:      LandlockScope{AbstractUnix: true, Signal: true},
			MinABI:     1,
		},
		Seccomp: Seccomp{Mode: Required, Profile: "default", Loaded: DefaultSeccompProfile()},
	}
}

// Resolve returns a copy of p with every default filled in (no zero Mode
// remains) and lists in canonical order: capabilities by number, paths
// cleaned and sorted, ports and groups sorted. It does not validate.
func (p *Policy) Resolve() *Policy {
	q := p.fill()
	q.normalize()
	return q
}

// fill returns a deep copy of p with defaults filled in, keeping the order
// of lists so that validation errors can name the index a user wrote.
func (p *Policy) fill() *Policy {
	q := p.clone()
	d := Default()
	defaultControl(&q.Namespaces, d.Namespaces)
	defaultControl(&q.CapabilityBoundingSet, d.CapabilityBoundingSet)
	defaultControl(&q.PrivilegeDrop, d.PrivilegeDrop)
	defaultControl(&q.Capabilities, d.Capabilities)
	defaultControl(&q.Rlimits, d.Rlimits)
	defaultControl(&q.CoreDump, d.CoreDump)
	defaultControl(&q.NoNewPrivs, d.NoNewPrivs)
	defaultControl(&q.Landlock, d.Landlock)
	defaultControl(&q.Seccomp, d.Seccomp)
	q.Namespaces.Mode = or(q.Namespaces.Mode, d.Namespaces.Mode)
	q.CapabilityBoundingSet.Mode = or(q.CapabilityBoundingSet.Mode, d.CapabilityBoundingSet.Mode)
	q.PrivilegeDrop.Mode = or(q.PrivilegeDrop.Mode, d.PrivilegeDrop.Mode)
	q.Capabilities.Mode = or(q.Capabilities.Mode, d.Capabilities.Mode)
	q.Rlimits.Mode = or(q.Rlimits.Mode, d.Rlimits.Mode)
	q.CoreDump.Mode = or(q.CoreDump.Mode, d.CoreDump.Mode)
	q.NoNewPrivs.Mode = or(q.NoNewPrivs.Mode, d.NoNewPrivs.Mode)
	q.Landlock.Mode = or(q.Landlock.Mode, d.Landlock.Mode)
	q.Seccomp.Mode = or(q.Seccomp.Mode, d.Seccomp.Mode)

	pd := &q.PrivilegeDrop
	if pd.User == "" && pd.Group == "" {
		pd.User, pd.Group = d.PrivilegeDrop.User, d.PrivilegeDrop.Group
		pd.WhenUnprivileged = or(pd.WhenUnprivileged, UnprivilegedKeep)
	}
	pd.WhenUnprivileged = or(pd.WhenUnprivileged, UnprivilegedSwitch)
	if q.Landlock.MinABI == 0 {
		q.Landlock.MinABI = d.Landlock.MinABI
	}
	if q.Seccomp.Profile == "" {
		q.Seccomp.Profile = d.Seccomp.Profile
	}
	if q.Seccomp.Profile == "default" && q.Seccomp.Loaded == nil {
		q.Seccomp.Loaded = DefaultSeccompProfile()
	}
	return q
}

func defaultControl[T any](c *T, def T) {
	if reflect.ValueOf(c).Elem().IsZero() {
		*c = def
	}
}

func or[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

// normalize puts lists in canonical order and cleans paths. Lists become
// non-nil, so that nil and empty encode the same way.
func (p *Policy) normalize() {
	sortCaps := func(c []Capability) []Capability {
		c = append([]Capability{}, c...)
		slices.Sort(c)
		return slices.Compact(c)
	}
	p.CapabilityBoundingSet.Keep = sortCaps(p.CapabilityBoundingSet.Keep)
	p.Capabilities.Keep = sortCaps(p.Capabilities.Keep)
	p.PrivilegeDrop.User = canonID(p.PrivilegeDrop.User)
	p.PrivilegeDrop.Group = canonID(p.PrivilegeDrop.Group)
	p.PrivilegeDrop.SupplementaryGroups = sortedUnique(p.PrivilegeDrop.SupplementaryGroups, canonID)
	if s := p.Seccomp.Profile; s != "default" {
		if c := filepath.Clean(s); c != "default" {
			p.Seccomp.Profile = c
		}
	}
	l := &p.Landlock
	l.ReadOnly = sortedUnique(l.ReadOnly, cleanPath)
	l.ReadWrite = sortedUnique(l.ReadWrite, cleanPath)
	l.Execute = sortedUnique(l.Execute, cleanPath)
	for _, ports := range []*[]uint16{&l.BindTCP, &l.ConnectTCP} {
		*ports = append([]uint16{}, *ports...)
		slices.Sort(*ports)
		*ports = slices.Compact(*ports)
	}
	if p.Rlimits.Limits == nil {
		p.Rlimits.Limits = map[string]Limit{}
	}
}

func sortedUnique(in []string, f func(string) string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, f(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// canonID writes a numeric user or group id without leading zeros; names
// are left alone.
func canonID(s string) string {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return s
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return s
	}
	return strconv.FormatUint(n, 10)
}

// cleanPath cleans an absolute path; relative paths are left alone for
// validation to report.
func cleanPath(s string) string {
	if !strings.HasPrefix(s, "/") {
		return s
	}
	return filepath.Clean(s)
}

func (p *Policy) clone() *Policy {
	q := *p
	q.CapabilityBoundingSet.Keep = slices.Clone(p.CapabilityBoundingSet.Keep)
	q.Capabilities.Keep = slices.Clone(p.Capabilities.Keep)
	q.PrivilegeDrop.SupplementaryGroups = slices.Clone(p.PrivilegeDrop.SupplementaryGroups)
	q.Landlock.ReadOnly = slices.Clone(p.Landlock.ReadOnly)
	q.Landlock.ReadWrite = slices.Clone(p.Landlock.ReadWrite)
	q.Landlock.Execute = slices.Clone(p.Landlock.Execute)
	q.Landlock.BindTCP = slices.Clone(p.Landlock.BindTCP)
	q.Landlock.ConnectTCP = slices.Clone(p.Landlock.ConnectTCP)
	q.Rlimits.Limits = maps.Clone(p.Rlimits.Limits)
	if p.Seccomp.Loaded != nil {
		q.Seccomp.Loaded = p.Seccomp.Loaded.clone()
	}
	return &q
}
