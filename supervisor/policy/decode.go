package policy

import (
	"fmt"
	"path/filepath"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Load reads and parses a policy file; see [Parse].
func Load(path string) (*Policy, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a policy file's content, YAML or JSON, strictly: unknown and
// duplicate keys, wrong types, unknown values and impossible combinations
// are errors, all reported at once, each naming name, line, column and
// field (an [*Error], or an [*Errors] when there are several). A seccomp
// profile path is read relative to the directory of name. The result is
// resolved (defaults filled in, lists in canonical order) and valid.
func Parse(name string, data []byte) (*Policy, error) {
	if name == "" {
		name = "<policy>"
	}
	root, perr := document(name, data)
	if perr != nil {
		return nil, perr
	}
	w := newWalker(name)
	w.pos[""] = root
	p := parseBase()
	d := &policyDecoder{walker: w, p: p, dir: filepath.Dir(name)}
	d.object(root, "", map[string]fieldFunc{
		"name":     func(n *yaml.Node, f string) { p.Name, _ = w.str(n, f, true) },
		"version":  func(n *yaml.Node, f string) { p.Version, _ = w.str(n, f, true) },
		"controls": d.controls,
	})

	q := p.fill()
	v := &validator{fromFile: true}
	q.validate(v)
	w.adopt(v.errs)
	if err := result(append(w.errs, d.profileErrs...)); err != nil {
		return nil, err
	}
	q.normalize()
	return q, nil
}

// parseBase is the policy a file's keys are laid over: the default policy,
// with the privilege-drop fields whose defaults depend on each other left
// for fill to derive, and no profile loaded yet.
func parseBase() *Policy {
	p := Default()
	p.Name, p.Version = "", ""
	p.PrivilegeDrop.User, p.PrivilegeDrop.Group, p.PrivilegeDrop.WhenUnprivileged = "", "", ""
	p.Seccomp.Loaded = nil
	return p
}

type policyDecoder struct {
	*walker
	p           *Policy
	dir         string
	profileErrs []*Error
}

func (d *policyDecoder) mode(m *Mode) fieldFunc {
	return func(n *yaml.Node, f string) {
		if s, ok := d.enum(n, f, string(Required), string(BestEffort), string(Off)); ok {
			*m = Mode(s)
		}
	}
}

func (d *policyDecoder) controls(n *yaml.Node, path string) {
	p := d.p
	d.object(n, path, map[string]fieldFunc{
		string(ControlNamespaces): func(n *yaml.Node, path string) {
			ns := &p.Namespaces
			fields := map[string]fieldFunc{"mode": d.mode(&ns.Mode)}
			for _, k := range namespaceKinds {
				fields[k.name] = d.flag(k.field(ns))
			}
			d.object(n, path, fields)
		},
		string(ControlCapabilityBoundingSet): func(n *yaml.Node, path string) {
			c := &p.CapabilityBoundingSet
			d.object(n, path, map[string]fieldFunc{"mode": d.mode(&c.Mode), "keep": d.caps(&c.Keep)})
		},
		string(ControlPrivilegeDrop): func(n *yaml.Node, path string) {
			pd := &p.PrivilegeDrop
			d.object(n, path, map[string]fieldFunc{
				"mode":                 d.mode(&pd.Mode),
				"user":                 d.id(&pd.User),
				"group":                d.id(&pd.Group),
				"supplementary_groups": d.ids(&pd.SupplementaryGroups),
				"when_unprivileged": func(n *yaml.Node, f string) {
					if s, ok := d.enum(n, f, string(UnprivilegedKeep), string(UnprivilegedSwitch)); ok {
						pd.WhenUnprivileged = Unprivileged(s)
					}
				},
			})
		},
		string(ControlCapabilities): func(n *yaml.Node, path string) {
			c := &p.Capabilities
			d.object(n, path, map[string]fieldFunc{"mode": d.mode(&c.Mode), "keep": d.caps(&c.Keep)})
		},
		string(ControlRlimits): func(n *yaml.Node, path string) {
			r := &p.Rlimits
			d.object(n, path, map[string]fieldFunc{"mode": d.mode(&r.Mode), "limits": d.limits(&r.Limits)})
		},
		string(ControlCoreDump): func(n *yaml.Node, path string) {
			d.object(n, path, map[string]fieldFunc{"mode": d.mode(&p.CoreDump.Mode)})
		},
		string(ControlNoNewPrivs): func(n *yaml.Node, path string) {
			d.object(n, path, map[string]fieldFunc{"mode": d.mode(&p.NoNewPrivs.Mode)})
		},
		string(ControlLandlock): d.landlock,
		string(ControlSeccomp):  d.seccomp,
	})
}

func (d *policyDecoder) flag(b *bool) fieldFunc {
	return func(n *yaml.Node, f string) {
		if v, ok := d.boolean(n, f); ok {
			*b = v
		}
	}
}

func (d *policyDecoder) caps(out *[]Capability) fieldFunc {
	return func(n *yaml.Node, path string) {
		*out = []Capability{}
		d.list(n, path, false, func(e *yaml.Node, f string) bool {
			s, ok := d.str(e, f, false)
			if !ok {
				return false
			}
			c, err := ParseCapability(s)
			if err != nil {
				d.errorf(e, f, "%v (want a name such as CAP_NET_BIND_SERVICE or net_bind_service)", err)
				return false
			}
			*out = append(*out, c)
			return true
		})
	}
}

// id decodes a user or group: a name, or a number written either way.
func (d *policyDecoder) id(out *string) fieldFunc {
	return func(n *yaml.Node, f string) {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			if v, ok := d.uint(n, f, maxID); ok {
				*out = strconv.FormatUint(v, 10)
			}
			return
		}
		s, ok := d.str(n, f, false)
		if !ok {
			return
		}
		if s == "" {
			d.errorf(n, f, "empty")
			return
		}
		*out = s
	}
}

func (d *policyDecoder) ids(out *[]string) fieldFunc {
	return func(n *yaml.Node, path string) {
		*out = []string{}
		d.list(n, path, false, func(e *yaml.Node, f string) bool {
			var s string
			d.id(&s)(e, f)
			if s != "" {
				*out = append(*out, s)
			}
			return s != ""
		})
	}
}

func (d *policyDecoder) limits(out *map[string]Limit) fieldFunc {
	return func(n *yaml.Node, path string) {
		*out = map[string]Limit{}
		fields := map[string]fieldFunc{}
		for name := range rlimitResources {
			fields[name] = func(n *yaml.Node, path string) {
				var l Limit
				ok := true
				value := func(v *uint64) fieldFunc {
					return func(n *yaml.Node, f string) {
						if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value == "unlimited" {
							*v = Unlimited
							return
						}
						if n.ShortTag() == "!!str" {
							d.errorf(n, f, "want an integer or \"unlimited\", got %s", describe(n))
							ok = false
							return
						}
						x, good := d.uint(n, f, Unlimited-1)
						*v, ok = x, ok && good
					}
				}
				seen := d.object(n, path, map[string]fieldFunc{"soft": value(&l.Soft), "hard": value(&l.Hard)}, "soft", "hard")
				if ok && seen["soft"] && seen["hard"] {
					(*out)[name] = l
				}
			}
		}
		d.object(n, path, fields)
	}
}

func (d *policyDecoder) landlock(n *yaml.Node, path string) {
	l := &d.p.Landlock
	paths := func(out *[]string) fieldFunc {
		return func(n *yaml.Node, f string) { *out = d.strings(n, f, false) }
	}
	ports := func(out *[]uint16) fieldFunc {
		return func(n *yaml.Node, path string) {
			*out = []uint16{}
			d.list(n, path, false, func(e *yaml.Node, f string) bool {
				v, ok := d.uint(e, f, 65535)
				if ok {
					*out = append(*out, uint16(v))
				}
				return ok
			})
		}
	}
	d.object(n, path, map[string]fieldFunc{
		"mode":        d.mode(&l.Mode),
		"read_only":   paths(&l.ReadOnly),
		"read_write":  paths(&l.ReadWrite),
		"execute":     paths(&l.Execute),
		"bind_tcp":    ports(&l.BindTCP),
		"connect_tcp": ports(&l.ConnectTCP),
		"scope": func(n *yaml.Node, path string) {
			d.object(n, path, map[string]fieldFunc{
				"abstract_unix": d.flag(&l.Scope.AbstractUnix),
				"signal":        d.flag(&l.Scope.Signal),
			})
		},
		"min_abi": func(n *yaml.Node, f string) {
			if v, ok := d.uint(n, f, 1<<31); ok {
				if v < 1 || v > MaxLandlockABI {
					d.errorf(n, f, "unknown Landlock ABI %d (want 1..%d)", v, MaxLandlockABI)
					return
				}
				l.MinABI = int(v)
			}
		},
	})
}

func (d *policyDecoder) seccomp(n *yaml.Node, path string) {
	s := &d.p.Seccomp
	var profileNode *yaml.Node
	d.object(n, path, map[string]fieldFunc{
		"mode": d.mode(&s.Mode),
		"profile": func(n *yaml.Node, f string) {
			if v, ok := d.str(n, f, false); ok {
				if v == "" {
					d.errorf(n, f, "empty (want \"default\" or the path of an OCI seccomp profile)")
					return
				}
				s.Profile, profileNode = v, n
			}
		},
		"default_action": func(n *yaml.Node, f string) {
			if v, ok := d.enum(n, f, seccompActionNames()...); ok {
				s.DefaultAction = SeccompAction(v)
			}
		},
		"log_denials": d.flag(&s.LogDenials),
	})
	if profileNode == nil || s.Profile == "default" {
		return
	}
	file := s.Profile
	if !filepath.IsAbs(file) {
		file = filepath.Join(d.dir, file)
	}
	data, err := readFile(file)
	if err != nil {
		d.errs = append(d.errs, &Error{File: d.file, Line: profileNode.Line, Column: profileNode.Column,
			Field: join(path, "profile"), Msg: "read seccomp profile: " + err.Error(), Err: err})
		return
	}
	prof, err := ParseSeccompProfile(file, data)
	if err != nil {
		d.profileErrs = append(d.profileErrs, flatten(err)...)
		return
	}
	s.Loaded = prof
}

// flatten returns the *Error values of an error from this package.
func flatten(err error) []*Error {
	switch e := err.(type) {
	case *Error:
		return []*Error{e}
	case *Errors:
		return *e
	}
	return []*Error{{Msg: err.Error(), Err: err}}
}
