package policy

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxLandlockABI is the highest Landlock ABI a policy may ask for: 7 added
// audit logging flags, 8 thread synchronisation (TSYNC).
const MaxLandlockABI = 8

// maxID is the highest uid or gid: (uid_t)-1 means "unchanged" to the kernel.
const maxID = 1<<32 - 2

var idName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$`)

type validator struct {
	errs []*Error
	// fromFile: Parse already loaded and checked the seccomp profile and
	// reported why it could not.
	fromFile bool
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate reports every problem of the effective policy (p with defaults
// filled in): unknown values, duplicates and impossible combinations. The
// errors name fields as a policy file would (controls.landlock.read_only[2])
// but have no file or line. Policies from [Parse], [Load] and [Default] are
// valid.
func (p *Policy) Validate() error {
	v := &validator{}
	p.fill().validate(v)
	return result(v.errs)
}

func (p *Policy) validate(v *validator) {
	if p.Name == "" {
		v.add("name", "required")
	}
	for _, c := range Controls() {
		if m := p.Mode(c); !m.valid() {
			v.add("controls."+string(c)+".mode", "unknown mode %q (want required, best_effort or off)", m)
		}
	}
	const bset, caps = "controls.capability_bounding_set.keep", "controls.capabilities.keep"
	v.caps(bset, p.CapabilityBoundingSet.Keep)
	v.caps(caps, p.Capabilities.Keep)
	if p.CapabilityBoundingSet.Mode != Off {
		for i, c := range p.Capabilities.Keep {
			if c.Valid() && !slices.Contains(p.CapabilityBoundingSet.Keep, c) {
				v.add(index(caps, i), "%s is not in %s: a capability the bounding set drops cannot be kept", c, bset)
			}
		}
	}
	p.PrivilegeDrop.validate(v)
	p.Seccomp.validate(v)
	p.Landlock.validate(v)
	if p.Namespaces.Mode != Off && len(p.Namespaces.Kinds()) == 0 {
		v.add("controls.namespaces", "no namespace kind is on (turn one on or set mode: off)")
	}
	p.validateRlimits(v)
}

func (v *validator) caps(field string, keep []Capability) {
	seen := map[Capability]bool{}
	for i, c := range keep {
		switch {
		case !c.Valid():
			v.add(index(field, i), "unknown capability number %d", int(c))
		case seen[c]:
			v.add(index(field, i), "duplicate %s", c)
		}
		seen[c] = true
	}
}

func (pd PrivilegeDrop) validate(v *validator) {
	const path = "controls.privilege_drop"
	switch {
	case pd.User == "" && pd.Group != "":
		v.add(path+".user", "missing: set user and group together")
	case pd.Group == "" && pd.User != "":
		v.add(path+".group", "missing: set user and group together")
	}
	if pd.User != "" {
		v.id(path+".user", "uid", pd.User)
	}
	if pd.Group != "" {
		v.id(path+".group", "gid", pd.Group)
	}
	seen := map[string]bool{}
	for i, g := range pd.SupplementaryGroups {
		f := index(path+".supplementary_groups", i)
		if seen[canonID(g)] {
			v.add(f, "duplicate group %s", g)
			continue
		}
		seen[canonID(g)] = true
		v.id(f, "gid", g)
	}
	if pd.WhenUnprivileged != UnprivilegedKeep && pd.WhenUnprivileged != UnprivilegedSwitch {
		v.add(path+".when_unprivileged", "unknown value %q (want keep, switch)", pd.WhenUnprivileged)
	}
}

// id checks a user or group: a decimal id or a name, never root.
func (v *validator) id(field, kind, s string) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseUint(s, 10, 64)
		switch {
		case err != nil || n > maxID:
			v.add(field, "%s %s is out of range 0..%d", kind, s, maxID)
		case n == 0:
			v.add(field, "%s 0 is root: dropping privileges to root drops nothing", kind)
		}
		return
	}
	switch {
	case s == "root":
		v.add(field, "root is %s 0: dropping privileges to root drops nothing", kind)
	case !idName.MatchString(s):
		v.add(field, "invalid name %q (want a name such as nobody or a decimal %s)", s, kind)
	}
}

func (s Seccomp) validate(v *validator) {
	const path = "controls.seccomp"
	if s.Profile == "" {
		v.add(path+".profile", "empty (want \"default\" or the path of an OCI seccomp profile)")
	}
	if s.DefaultAction != "" && !s.DefaultAction.valid() {
		v.add(path+".default_action", "unknown action %q", s.DefaultAction)
		return
	}
	if s.Loaded == nil {
		if !v.fromFile {
			v.add(path+".profile", "profile %q is not loaded (use Load or Parse, or set Seccomp.Loaded)", s.Profile)
		}
		return
	}
	if !v.fromFile {
		if err := s.Loaded.Validate(); err != nil {
			for _, e := range flatten(err) {
				v.add(path+".profile", "%s", e.Error())
			}
			return
		}
	}
	field := path + ".profile"
	if s.DefaultAction != "" {
		field = path + ".default_action"
	}
	eff := s.Effective()
	if !eff.allowsSome() {
		v.add(field, "every system call would be denied: the default action is %s and no rule allows anything", eff.DefaultAction)
		return
	}
	if act, ok := eff.unconditional("execve"); ok && act != ActAllow && act != ActLog {
		v.add(field, "execve gets %s: the sandbox could never start its program", act)
	}
	for _, name := range []string{"prlimit64", "setrlimit"} {
		if act, ok := eff.unconditional(name); ok && act.kills() {
			v.add(field, "%s gets %s, but Go's syscall.Exec calls it after the filter is installed (to restore RLIMIT_NOFILE)", name, act)
		}
	}
}

func (l Landlock) validate(v *validator) {
	const path = "controls.landlock"
	lists := []struct {
		key   string
		paths []string
	}{{"read_only", l.ReadOnly}, {"read_write", l.ReadWrite}, {"execute", l.Execute}}
	for _, list := range lists {
		first := map[string]int{}
		for i, p := range list.paths {
			f := index(path+"."+list.key, i)
			switch {
			case !strings.HasPrefix(p, "/"):
				v.add(f, "%q is not an absolute path", p)
				continue
			case strings.ContainsRune(p, 0):
				v.add(f, "%q contains a NUL byte", p)
				continue
			case slices.Contains(strings.Split(p, "/"), ".."):
				v.add(f, "%q contains \"..\" (write the path it means)", p)
				continue
			}
			c := filepath.Clean(p)
			if j, dup := first[c]; dup {
				if list.paths[j] == p {
					v.add(f, "duplicate path %s", p)
				} else {
					v.add(f, "duplicate path %s (the same as %s)", p, list.paths[j])
				}
				continue
			}
			first[c] = i
		}
	}
	readable := append(slices.Clone(l.ReadOnly), l.ReadWrite...)
	for i, x := range l.Execute {
		if strings.HasPrefix(x, "/") && !beneathAny(filepath.Clean(x), readable) {
			v.add(index(path+".execute", i), "%s is not readable: execve needs the read right too (add it or a parent to read_only)", x)
		}
	}
	for _, ports := range []struct {
		key   string
		ports []uint16
	}{{"bind_tcp", l.BindTCP}, {"connect_tcp", l.ConnectTCP}} {
		first := map[uint16]int{}
		for i, port := range ports.ports {
			f := index(path+"."+ports.key, i)
			if _, dup := first[port]; dup {
				v.add(f, "duplicate port %d", port)
				continue
			}
			first[port] = i
			if port == 0 && ports.key == "connect_tcp" {
				v.add(f, "port 0 cannot be connected to (want 1..65535)")
			}
		}
	}
	if l.MinABI < 1 || l.MinABI > MaxLandlockABI {
		v.add(path+".min_abi", "unknown Landlock ABI %d (want 1..%d)", l.MinABI, MaxLandlockABI)
	}
}

// beneathAny reports whether path is one of dirs or beneath one of them.
func beneathAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if !strings.HasPrefix(d, "/") {
			continue
		}
		d = filepath.Clean(d)
		if path == d || d == "/" || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

func (p *Policy) validateRlimits(v *validator) {
	const path = "controls.rlimits.limits"
	r := p.Rlimits
	if r.Mode != Off && len(r.Limits) == 0 {
		v.add(path, "no limits (set one or set mode: off)")
	}
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		l := r.Limits[name]
		f := join(path, name)
		if _, ok := rlimitResources[name]; !ok {
			v.add(f, "unknown limit (want one of %s)", strings.Join(slices.Sorted(maps.Keys(rlimitResources)), ", "))
			continue
		}
		if l.Soft > l.Hard {
			v.add(f+".soft", "soft limit %s is above the hard limit %s", limitString(l.Soft), limitString(l.Hard))
		}
	}
	if l, ok := r.Limits["core"]; ok && (l.Soft != 0 || l.Hard != 0) && p.CoreDump.Mode != Off {
		v.add(path+".core", "a non-zero core limit contradicts controls.core_dump, which turns core dumps off (set its mode to off to allow them)")
	}
}

func limitString(v uint64) string {
	if v == Unlimited {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
