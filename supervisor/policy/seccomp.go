package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// SeccompProfile is a seccomp profile in the OCI runtime-spec / Docker JSON
// format, restricted to what real profiles use. It is data only: compiling
// it to BPF is the supervisor's job, which must follow Docker's reading of
// it: archMap picks the entry of the native architecture (its
// subArchitectures get the same rules, any other architecture is killed),
// includes/excludes are evaluated against the kept capabilities and the
// host, and names an architecture does not have are skipped, as runc does.
type SeccompProfile struct {
	DefaultAction   SeccompAction    `json:"defaultAction"`
	DefaultErrnoRet *uint            `json:"defaultErrnoRet,omitempty"` // errno of an ERRNO default action; EPERM when unset
	Architectures   []string         `json:"architectures,omitempty"`   // SCMP_ARCH_* names; or ArchMap, not both
	ArchMap         []SeccompArch    `json:"archMap,omitempty"`
	Syscalls        []SeccompSyscall `json:"syscalls,omitempty"`
}

// SeccompArch is an archMap entry: an architecture and the
// sub-architectures that get the same rules (x86_64: x86 and x32).
type SeccompArch struct {
	Architecture     string   `json:"architecture"`
	SubArchitectures []string `json:"subArchitectures"`
}

// SeccompSyscall is a rule: the action for the named system calls when all
// Args conditions hold. Docker's deprecated single "name" is read into
// Names.
type SeccompSyscall struct {
	Names    []string       `json:"names"`
	Action   SeccompAction  `json:"action"`
	ErrnoRet *uint          `json:"errnoRet,omitempty"` // for ERRNO and TRACE
	Args     []SeccompArg   `json:"args,omitempty"`
	Comment  string         `json:"comment,omitempty"`
	Includes *SeccompFilter `json:"includes,omitempty"` // the rule applies only if all of these hold
	Excludes *SeccompFilter `json:"excludes,omitempty"` // the rule does not apply if any of these holds
}

// SeccompArg compares a system call argument. For SCMP_CMP_MASKED_EQ, Value
// is the mask and ValueTwo the value: (arg & Value) == ValueTwo.
type SeccompArg struct {
	Index    uint      `json:"index"` // 0..5
	Value    uint64    `json:"value"`
	ValueTwo uint64    `json:"valueTwo,omitempty"`
	Op       SeccompOp `json:"op"`
}

// SeccompFilter is Docker's condition on a rule.
type SeccompFilter struct {
	Caps      []string `json:"caps,omitempty"`      // CAP_* names, canonical spelling
	Arches    []string `json:"arches,omitempty"`    // Docker's names: amd64, arm64, x86, x32, s390x...
	MinKernel string   `json:"minKernel,omitempty"` // "<kernel>.<major>", e.g. "4.8"
}

func (f *SeccompFilter) empty() bool {
	return f == nil || len(f.Caps) == 0 && len(f.Arches) == 0 && f.MinKernel == ""
}

// SeccompAction is an SCMP_ACT_* action.
type SeccompAction string

const (
	ActKill        SeccompAction = "SCMP_ACT_KILL" // kills the thread
	ActKillProcess SeccompAction = "SCMP_ACT_KILL_PROCESS"
	ActKillThread  SeccompAction = "SCMP_ACT_KILL_THREAD"
	ActTrap        SeccompAction = "SCMP_ACT_TRAP"
	ActErrno       SeccompAction = "SCMP_ACT_ERRNO"
	ActTrace       SeccompAction = "SCMP_ACT_TRACE"
	ActAllow       SeccompAction = "SCMP_ACT_ALLOW"
	ActLog         SeccompAction = "SCMP_ACT_LOG"
)

var seccompActions = []SeccompAction{ActKill, ActKillProcess, ActKillThread, ActTrap, ActErrno, ActTrace, ActAllow, ActLog}

func seccompActionNames() []string {
	out := make([]string, len(seccompActions))
	for i, a := range seccompActions {
		out[i] = string(a)
	}
	return out
}

func (a SeccompAction) valid() bool { return slices.Contains(seccompActions, a) }

func (a SeccompAction) kills() bool {
	return a == ActKill || a == ActKillProcess || a == ActKillThread || a == ActTrap
}

// SeccompOp is an SCMP_CMP_* comparison.
type SeccompOp string

var seccompOps = []string{"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}

var seccompArches = []string{
	"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
	"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
	"SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
	"SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
	"SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
}

// dockerArches are the names Docker's includes/excludes use.
var dockerArches = []string{
	"386", "amd64", "arm", "arm64", "loong64", "loongarch64", "mips", "mips64", "mips64n32", "mips3l64n32",
	"mipsel", "mipsel64", "mipsle", "ppc", "ppc64", "ppc64le", "riscv64", "s390", "s390x", "x32", "x86",
}

const maxErrno = 4095

var (
	syscallName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	kernelVer   = regexp.MustCompile(`^([0-9]{1,3})\.([0-9]{1,3})$`)
)

// LoadSeccompProfile reads and parses an OCI/Docker seccomp JSON profile.
func LoadSeccompProfile(path string) (*SeccompProfile, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load seccomp profile: %w", err)
	}
	return ParseSeccompProfile(path, data)
}

// ParseSeccompProfile parses an OCI/Docker seccomp JSON profile strictly:
// unknown fields, wrong types and unknown values are errors with file,
// line and field, all reported at once. listenerPath, listenerMetadata,
// flags and SCMP_ACT_NOTIFY are refused: sandtrail has no notification
// listener, and sets filter flags from the policy (log_denials).
func ParseSeccompProfile(name string, data []byte) (*SeccompProfile, error) {
	if name == "" {
		name = "<profile>"
	}
	root, perr := document(name, data)
	if perr != nil {
		return nil, perr
	}
	if root.Kind != yaml.MappingNode || root.Style&yaml.FlowStyle == 0 {
		return nil, &Error{File: name, Line: root.Line, Column: root.Column, Msg: "not a JSON object (a seccomp profile is JSON)"}
	}
	w := newWalker(name)
	w.noun = "field"
	w.pos[""] = root
	p := &SeccompProfile{}
	unsupported := func(why string) fieldFunc {
		return func(n *yaml.Node, f string) { w.errorf(n, f, "not supported: %s", why) }
	}
	w.object(root, "", map[string]fieldFunc{
		"defaultAction":   w.action(&p.DefaultAction),
		"defaultErrnoRet": w.errno(&p.DefaultErrnoRet),
		"architectures":   func(n *yaml.Node, f string) { p.Architectures = w.strings(n, f, true) },
		"archMap": func(n *yaml.Node, path string) {
			w.list(n, path, true, func(n *yaml.Node, path string) bool {
				var a SeccompArch
				w.object(n, path, map[string]fieldFunc{
					"architecture":     func(n *yaml.Node, f string) { a.Architecture, _ = w.str(n, f, false) },
					"subArchitectures": func(n *yaml.Node, f string) { a.SubArchitectures = w.strings(n, f, true) },
				}, "architecture")
				p.ArchMap = append(p.ArchMap, a)
				return true
			})
		},
		"syscalls":         func(n *yaml.Node, path string) { w.list(n, path, true, w.syscall(p)) },
		"flags":            unsupported("filter flags come from the policy (controls.seccomp.log_denials)"),
		"listenerPath":     unsupported("sandtrail has no seccomp notification listener"),
		"listenerMetadata": unsupported("sandtrail has no seccomp notification listener"),
	}, "defaultAction")
	v := &validator{}
	p.validate(v)
	w.adopt(v.errs)
	if err := result(w.errs); err != nil {
		return nil, err
	}
	return p, nil
}

func (w *walker) action(out *SeccompAction) fieldFunc {
	return func(n *yaml.Node, f string) {
		if s, ok := w.str(n, f, false); ok {
			if s == "SCMP_ACT_NOTIFY" {
				w.errorf(n, f, "SCMP_ACT_NOTIFY is not supported: sandtrail has no seccomp notification listener")
				return
			}
			if !SeccompAction(s).valid() {
				w.errorf(n, f, "unknown action %q", s)
				return
			}
			*out = SeccompAction(s)
		}
	}
}

func (w *walker) errno(out **uint) fieldFunc {
	return func(n *yaml.Node, f string) {
		if v, ok := w.uint(n, f, maxErrno); ok {
			u := uint(v)
			*out = &u
		}
	}
}

func (w *walker) syscall(p *SeccompProfile) func(n *yaml.Node, path string) bool {
	return func(n *yaml.Node, path string) bool {
		var s SeccompSyscall
		var name string
		filter := func(out **SeccompFilter) fieldFunc {
			return func(n *yaml.Node, path string) {
				f := &SeccompFilter{}
				w.object(n, path, map[string]fieldFunc{
					"caps":      func(n *yaml.Node, field string) { f.Caps = w.strings(n, field, true) },
					"arches":    func(n *yaml.Node, field string) { f.Arches = w.strings(n, field, true) },
					"minKernel": func(n *yaml.Node, field string) { f.MinKernel, _ = w.str(n, field, false) },
				})
				if !f.empty() {
					*out = f
				}
			}
		}
		seen := w.object(n, path, map[string]fieldFunc{
			"names":    func(n *yaml.Node, f string) { s.Names = w.strings(n, f, true) },
			"name":     func(n *yaml.Node, f string) { name, _ = w.str(n, f, false) },
			"action":   w.action(&s.Action),
			"errnoRet": w.errno(&s.ErrnoRet),
			"args": func(n *yaml.Node, path string) {
				w.list(n, path, true, func(n *yaml.Node, path string) bool {
					var a SeccompArg
					w.object(n, path, map[string]fieldFunc{
						"index": func(n *yaml.Node, f string) {
							if v, ok := w.uint(n, f, 5); ok {
								a.Index = uint(v)
							}
						},
						"value":    func(n *yaml.Node, f string) { a.Value, _ = w.uint(n, f, ^uint64(0)) },
						"valueTwo": func(n *yaml.Node, f string) { a.ValueTwo, _ = w.uint(n, f, ^uint64(0)) },
						"op": func(n *yaml.Node, f string) {
							if v, ok := w.enum(n, f, seccompOps...); ok {
								a.Op = SeccompOp(v)
							}
						},
					}, "index", "value", "op")
					s.Args = append(s.Args, a)
					return true
				})
			},
			"comment":  func(n *yaml.Node, f string) { s.Comment, _ = w.str(n, f, false) },
			"includes": filter(&s.Includes),
			"excludes": filter(&s.Excludes),
		}, "action")
		switch {
		case seen["name"] && seen["names"]:
			w.errorf(n, path+".name", "both name and names (use names)")
		case seen["name"]:
			s.Names = []string{name}
		case !seen["names"]:
			w.errorf(n, path+".names", "missing")
		}
		p.Syscalls = append(p.Syscalls, s)
		return true
	}
}

// Validate reports every problem of a profile built in Go; profiles from
// ParseSeccompProfile and DefaultSeccompProfile are valid.
func (p *SeccompProfile) Validate() error {
	v := &validator{}
	p.validate(v)
	return result(v.errs)
}

func (p *SeccompProfile) validate(v *validator) {
	if !p.DefaultAction.valid() {
		v.add("defaultAction", "unknown action %q", p.DefaultAction)
	}
	if p.DefaultErrnoRet != nil && p.DefaultAction != ActErrno && p.DefaultAction != ActTrace {
		v.add("defaultErrnoRet", "only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", p.DefaultAction)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		v.add("archMap", "both architectures and archMap (use one)")
	}
	for i, a := range p.Architectures {
		v.arch(index("architectures", i), a)
	}
	for i, m := range p.ArchMap {
		v.arch(index("archMap", i)+".architecture", m.Architecture)
		for j, a := range m.SubArchitectures {
			v.arch(index(index("archMap", i)+".subArchitectures", j), a)
		}
	}
	unconditional := map[string]int{}
	for i, s := range p.Syscalls {
		path := index("syscalls", i)
		if len(s.Names) == 0 {
			v.add(path+".names", "no system call names")
		}
		for j, n := range s.Names {
			if !syscallName.MatchString(n) {
				v.add(index(path+".names", j), "invalid system call name %q", n)
			}
		}
		if !s.Action.valid() {
			v.add(path+".action", "unknown action %q", s.Action)
		}
		if s.ErrnoRet != nil && s.Action != ActErrno && s.Action != ActTrace {
			v.add(path+".errnoRet", "only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", s.Action)
		}
		if s.ErrnoRet != nil && *s.ErrnoRet > maxErrno {
			v.add(path+".errnoRet", "%d is out of range 0..%d", *s.ErrnoRet, maxErrno)
		}
		for j, a := range s.Args {
			f := index(path+".args", j)
			if a.Index > 5 {
				v.add(f+".index", "%d is out of range 0..5", a.Index)
			}
			if !slices.Contains(seccompOps, string(a.Op)) {
				v.add(f+".op", "unknown value %q", a.Op)
			}
		}
		v.filter(path+".includes", s.Includes)
		v.filter(path+".excludes", s.Excludes)
		if len(s.Args) > 0 || !s.Includes.empty() || !s.Excludes.empty() {
			continue
		}
		for _, n := range s.Names {
			if j, ok := unconditional[n]; ok && p.Syscalls[j].Action != s.Action {
				v.add(path+".names", "%s already gets %s from %s", n, p.Syscalls[j].Action, index("syscalls", j))
				continue
			}
			unconditional[n] = i
		}
	}
}

func (v *validator) arch(field, a string) {
	if !slices.Contains(seccompArches, a) {
		v.add(field, "unknown architecture %q (want an SCMP_ARCH_* name)", a)
	}
}

func (v *validator) filter(path string, f *SeccompFilter) {
	if f == nil {
		return
	}
	for i, c := range f.Caps {
		if _, err := ParseCapability(c); err != nil {
			v.add(index(path+".caps", i), "%v", err)
		}
	}
	for i, a := range f.Arches {
		if !slices.Contains(dockerArches, a) {
			v.add(index(path+".arches", i), "unknown architecture %q (want a name such as amd64, arm64 or x32)", a)
		}
	}
	if f.MinKernel != "" {
		m := kernelVer.FindStringSubmatch(f.MinKernel)
		if m == nil || m[1] == "0" && m[2] == "0" || atoi(m[1]) > 255 || atoi(m[2]) > 255 {
			v.add(path+".minKernel", "invalid kernel version %q (want <kernel>.<major>, e.g. 4.8)", f.MinKernel)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// allowsSome reports whether any system call can run at all.
func (p *SeccompProfile) allowsSome() bool {
	if p.DefaultAction == ActAllow || p.DefaultAction == ActLog {
		return true
	}
	for _, s := range p.Syscalls {
		if s.Action == ActAllow || s.Action == ActLog {
			return true
		}
	}
	return false
}

// unconditional returns the action a system call always gets, and false
// when that depends on its arguments, the architecture, the capabilities
// or the kernel.
func (p *SeccompProfile) unconditional(name string) (SeccompAction, bool) {
	act, found := p.DefaultAction, false
	for _, s := range p.Syscalls {
		if !slices.Contains(s.Names, name) {
			continue
		}
		if len(s.Args) > 0 || !s.Includes.empty() || !s.Excludes.empty() {
			return "", false
		}
		if !found {
			act, found = s.Action, true
		}
	}
	return act, true
}

// SHA256 returns the hex SHA-256 of the profile's JSON encoding without
// comments (and with null for an empty list): it changes exactly when the
// rules do.
func (p *SeccompProfile) SHA256() string {
	q := p.clone()
	for i := range q.Syscalls {
		q.Syscalls[i].Comment = ""
	}
	for i := range q.ArchMap {
		if len(q.ArchMap[i].SubArchitectures) == 0 {
			q.ArchMap[i].SubArchitectures = nil // null and [] are the same
		}
	}
	b, err := json.Marshal(q)
	if err != nil { // not reached: the type has only plain fields
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (p *SeccompProfile) clone() *SeccompProfile {
	q := *p
	q.DefaultErrnoRet = clonePtr(p.DefaultErrnoRet)
	q.Architectures = slices.Clone(p.Architectures)
	q.ArchMap = slices.Clone(p.ArchMap)
	for i := range q.ArchMap {
		q.ArchMap[i].SubArchitectures = slices.Clone(q.ArchMap[i].SubArchitectures)
	}
	q.Syscalls = slices.Clone(p.Syscalls)
	for i := range q.Syscalls {
		s := &q.Syscalls[i]
		s.Names = slices.Clone(s.Names)
		s.ErrnoRet = clonePtr(s.ErrnoRet)
		s.Args = slices.Clone(s.Args)
		for _, f := range []**SeccompFilter{&s.Includes, &s.Excludes} {
			if *f != nil {
				c := **f
				c.Caps, c.Arches = slices.Clone(c.Caps), slices.Clone(c.Arches)
				*f = &c
			}
		}
	}
	return &q
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
