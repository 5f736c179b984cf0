package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// field is a key and value of the encoded policy; value is a string, bool,
// uint64, list (of strings or uint64) or obj. The one tree serves
// Canonical (sorted keys) and YAML (this order).
type field struct {
	key     string
	value   any
	comment string // YAML line comment
}

type obj []field

type list []any

// tree is the resolved policy in its file shape.
func (p *Policy) tree() obj {
	strs := func(s []string) list {
		out := list{}
		for _, v := range s {
			out = append(out, v)
		}
		return out
	}
	caps := func(cs []Capability) list {
		out := list{}
		for _, c := range cs {
			out = append(out, c.String())
		}
		return out
	}
	ports := func(ps []uint16) list {
		out := list{}
		for _, v := range ps {
			out = append(out, uint64(v))
		}
		return out
	}
	mode := func(m Mode) field { return field{key: "mode", value: string(m)} }

	ns := obj{mode(p.Namespaces.Mode)}
	for _, k := range namespaceKinds {
		ns = append(ns, field{key: k.name, value: *k.field(&p.Namespaces)})
	}
	limits := obj{}
	for _, name := range slices.Sorted(maps.Keys(p.Rlimits.Limits)) {
		l := p.Rlimits.Limits[name]
		limits = append(limits, field{key: name, value: obj{{key: "soft", value: limitValue(l.Soft)}, {key: "hard", value: limitValue(l.Hard)}}})
	}
	sc := obj{mode(p.Seccomp.Mode), {key: "profile", value: p.Seccomp.Profile}}
	if p.Seccomp.Loaded != nil {
		sc[1].comment = "sha256:" + p.Seccomp.Loaded.SHA256()
	}
	if p.Seccomp.DefaultAction != "" {
		sc = append(sc, field{key: "default_action", value: string(p.Seccomp.DefaultAction)})
	}
	sc = append(sc, field{key: "log_denials", value: p.Seccomp.LogDenials})
	l := p.Landlock
	pd := p.PrivilegeDrop
	return obj{
		{key: "name", value: p.Name},
		{key: "version", value: p.Version},
		{key: "controls", value: obj{
			{key: string(ControlNamespaces), value: ns},
			{key: string(ControlCapabilityBoundingSet), value: obj{mode(p.CapabilityBoundingSet.Mode), {key: "keep", value: caps(p.CapabilityBoundingSet.Keep)}}},
			{key: string(ControlPrivilegeDrop), value: obj{mode(pd.Mode),
				{key: "user", value: pd.User}, {key: "group", value: pd.Group},
				{key: "supplementary_groups", value: strs(pd.SupplementaryGroups)},
				{key: "when_unprivileged", value: string(pd.WhenUnprivileged)}}},
			{key: string(ControlCapabilities), value: obj{mode(p.Capabilities.Mode), {key: "keep", value: caps(p.Capabilities.Keep)}}},
			{key: string(ControlRlimits), value: obj{mode(p.Rlimits.Mode), {key: "limits", value: limits}}},
			{key: string(ControlCoreDump), value: obj{mode(p.CoreDump.Mode)}},
			{key: string(ControlNoNewPrivs), value: obj{mode(p.NoNewPrivs.Mode)}},
			{key: string(ControlLandlock), value: obj{mode(l.Mode),
				{key: "read_only", value: strs(l.ReadOnly)}, {key: "read_write", value: strs(l.ReadWrite)},
				{key: "execute", value: strs(l.Execute)},
				{key: "bind_tcp", value: ports(l.BindTCP)}, {key: "connect_tcp", value: ports(l.ConnectTCP)},
				{key: "scope", value: obj{{key: "abstract_unix", value: l.Scope.AbstractUnix}, {key: "signal", value: l.Scope.Signal}}},
				{key: "min_abi", value: uint64(l.MinABI)}}},
			{key: string(ControlSeccomp), value: sc},
		}},
	}
}

func limitValue(v uint64) any {
	if v == Unlimited {
		return "unlimited"
	}
	return v
}

// Canonical returns the canonical JSON encoding of the resolved policy:
// defaults filled in, lists in canonical order, object keys sorted, no
// insignificant space. The seccomp profile appears as its path and the
// SHA-256 of its rules (controls.seccomp.profile_sha256). Two files that
// differ only in key order, comments, spelling (sys_admin, CAP_SYS_ADMIN)
// or list order have the same canonical encoding.
func (p *Policy) Canonical() []byte {
	q := p.Resolve()
	t := q.tree()
	if q.Seccomp.Loaded != nil {
		controls := t[2].value.(obj)
		sc := controls[len(controls)-1].value.(obj)
		controls[len(controls)-1].value = append(sc, field{key: "profile_sha256", value: q.Seccomp.Loaded.SHA256()})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(plain(t)); err != nil { // not reached: plain values only
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// plain converts a tree into maps and slices, which encoding/json writes
// with sorted keys.
func plain(v any) any {
	switch v := v.(type) {
	case obj:
		m := make(map[string]any, len(v))
		for _, f := range v {
			m[f.key] = plain(f.value)
		}
		return m
	case list:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// UID returns the hex SHA-256 of [Policy.Canonical]: the policy.uid of
// sandtrail's events.
func (p *Policy) UID() string {
	sum := sha256.Sum256(p.Canonical())
	return hex.EncodeToString(sum[:])
}

// YAML returns the resolved policy as a policy file, every default written
// out: what `sandtrail policy show` prints. Parsing it (under the same file
// name, so a profile path still resolves) gives the same policy.
func (p *Policy) YAML() []byte {
	q := p.Resolve()
	root := yamlNode(q.tree())
	root.HeadComment = fmt.Sprintf("sandtrail policy %q, defaults filled in\nuid: %s", q.Name, q.UID())
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil { // not reached: plain nodes only
		panic(err)
	}
	return b.Bytes()
}

func yamlNode(v any) *yaml.Node {
	switch v := v.(type) {
	case obj:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range v {
			val := yamlNode(f.value)
			val.LineComment = f.comment
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.key}, val)
		}
		return n
	case list:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, e := range v {
			n.Content = append(n.Content, yamlNode(e))
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case uint64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v, 10)}
	}
	panic(fmt.Sprintf("policy: cannot encode %T", v))
}

// String returns a summary of the resolved policy, a header and one line
// per control in apply order: the text logs, events and test failures use.
func (p *Policy) String() string {
	q := p.Resolve()
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s version %s\n", quote(q.Name), quote(q.Version))
	line := func(c Control, m Mode, params ...string) {
		b.WriteString(string(c) + ": " + string(m))
		for _, s := range params {
			b.WriteString(" " + s)
		}
		b.WriteString("\n")
	}
	line(ControlNamespaces, q.Namespaces.Mode, "kinds="+words(q.Namespaces.Kinds()))
	line(ControlCapabilityBoundingSet, q.CapabilityBoundingSet.Mode, "keep="+capWords(q.CapabilityBoundingSet.Keep))
	pd := q.PrivilegeDrop
	line(ControlPrivilegeDrop, pd.Mode, "user="+quote(pd.User), "group="+quote(pd.Group),
		"supplementary_groups="+words(pd.SupplementaryGroups), "when_unprivileged="+string(pd.WhenUnprivileged))
	line(ControlCapabilities, q.Capabilities.Mode, "keep="+capWords(q.Capabilities.Keep))
	var limits []string
	for _, name := range slices.Sorted(maps.Keys(q.Rlimits.Limits)) {
		l := q.Rlimits.Limits[name]
		limits = append(limits, name+"="+limitString(l.Soft)+"/"+limitString(l.Hard))
	}
	if len(limits) == 0 {
		limits = []string{"limits=none"}
	}
	line(ControlRlimits, q.Rlimits.Mode, limits...)
	line(ControlCoreDump, q.CoreDump.Mode)
	line(ControlNoNewPrivs, q.NoNewPrivs.Mode)
	l := q.Landlock
	var scope []string
	if l.Scope.AbstractUnix {
		scope = append(scope, "abstract_unix")
	}
	if l.Scope.Signal {
		scope = append(scope, "signal")
	}
	line(ControlLandlock, l.Mode, "min_abi="+strconv.Itoa(l.MinABI), "read_only="+words(l.ReadOnly),
		"read_write="+words(l.ReadWrite), "execute="+words(l.Execute), "bind_tcp="+portWords(l.BindTCP),
		"connect_tcp="+portWords(l.ConnectTCP), "scope="+words(scope))
	s := q.Seccomp
	params := []string{"profile=" + quote(s.Profile)}
	if eff := s.Effective(); eff != nil {
		params = append(params, "sha256="+eff.SHA256()[:16], "default_action="+string(eff.DefaultAction),
			"rules="+strconv.Itoa(len(eff.Syscalls)))
	}
	line(ControlSeccomp, s.Mode, append(params, "log_denials="+strconv.FormatBool(s.LogDenials))...)
	return strings.TrimSuffix(b.String(), "\n")
}

// quote quotes s only when it is empty or holds space, commas, quotes or
// anything unprintable, so that each line splits on spaces and commas.
func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " ,\"'=\t") || strconv.Quote(s) != `"`+s+`"` {
		return strconv.Quote(s)
	}
	return s
}

func words(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return strings.Join(out, ",")
}

func capWords(cs []Capability) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return words(out)
}

func portWords(ps []uint16) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strconv.Itoa(int(p))
	}
	return words(out)
}
