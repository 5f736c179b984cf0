package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// profileSet is sandtrail's OCSF profile set, in bit order. An attribute
// introduced by a profile outside this set is not part of the generated
// model; an attribute introduced by one of these is allowed only when the
// event declares the profile in metadata.profiles.
var profileSet = []string{"host", "security_control", "linux/linux_users", "container"}

// wantClasses are the OCSF classes sandtrail emits (see EVENTS.md).
var wantClasses = []int{2003, 2004, 5019, 1007, 6002, 6008, 1003, 1001, 4001}

// excludedExtensions are platform extensions whose attributes sandtrail
// never declares (metadata.extensions lists only linux).
var excludedExtensions = map[string]bool{"win": true, "macos": true}

// Raw forms of the compiled schema.
type rawSchema struct {
	Version    string               `json:"version"`
	Classes    map[string]*rawType  `json:"classes"`
	Objects    map[string]*rawType  `json:"objects"`
	Dictionary rawDictionary        `json:"dictionary"`
	Extensions map[string]rawExtRef `json:"extensions"`
}

type rawExtRef struct {
	UID     int    `json:"uid"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type rawDictionary struct {
	Types struct {
		Attributes map[string]rawDictType `json:"attributes"`
	} `json:"types"`
}

type rawDictType struct {
	Type   string `json:"type"`
	Regex  string `json:"regex"`
	MaxLen int    `json:"max_len"`
	Range  []int  `json:"range"`
}

type rawType struct {
	Name         string              `json:"name"`
	Caption      string              `json:"caption"`
	Description  string              `json:"description"`
	UID          int                 `json:"uid"`
	CategoryUID  int                 `json:"category_uid"`
	CategoryName string              `json:"category_name"`
	Attributes   map[string]*rawAttr `json:"attributes"`
	Constraints  map[string][]string `json:"constraints"`
}

type rawAttr struct {
	Caption     string                  `json:"caption"`
	Description string                  `json:"description"`
	Type        string                  `json:"type"`
	Requirement string                  `json:"requirement"`
	Profiles    []string                `json:"profiles"`
	IsArray     bool                    `json:"is_array"`
	ObjectType  string                  `json:"object_type"`
	Enum        map[string]rawEnumValue `json:"enum"`
	Sibling     string                  `json:"sibling"`
	Extension   string                  `json:"extension"`
	Deprecated  json.RawMessage         `json:"@deprecated"`
}

type rawEnumValue struct {
	Caption     string `json:"caption"`
	Description string `json:"description"`
}

// Model is the resolved subset of OCSF that sandtrail generates code for.
type Model struct {
	Version  string
	Classes  []*Type
	Objects  []*Type // sorted by name; Index is the position in Types()
	Enums    []*Enum
	BaseAttr map[string]bool // attributes shared verbatim by every class (the Base struct)
	Types    map[string]rawDictType
	LinuxExt rawExtRef
}

// Type is a class or an object.
type Type struct {
	Name, Caption, Desc string
	GoName              string
	IsClass             bool
	UID                 int
	CategoryUID         int
	CategoryName        string
	Attrs               []*Attr // sorted by name
	AtLeastOne          []string
	JustOne             []string
	Index               int // index in the rule table (objects first, then classes)
	FreeForm            bool
}

// Attr is one attribute of a Type.
type Attr struct {
	Name, Caption, Desc string
	GoName              string
	OCSFType            string // e.g. uuid_t
	Base                string // string_t, integer_t, long_t, float_t, boolean_t, object_t, json_t
	Required            bool
	Recommended         bool
	Profiles            []string // nil: core attribute
	Array               bool
	Object              *Type
	Enum                *Enum
	EnumName            string // Go type name used for this attribute: the enum or its owner-specific alias
	Sibling             string // name of the caption sibling, for an enum id
	SiblingOf           string // name of the enum id whose caption this is
	Deprecated          bool
}

// Enum is an integer enumeration with captions.
type Enum struct {
	GoName string
	// ZeroMeaningful: 0 is a real member (risk_level_id 0 is Info), not
	// Unknown, so an optional attribute needs a pointer to tell 0 from absent.
	ZeroMeaningful bool
	Attr           string
	Values         []EnumValue // sorted by ID
	key            string
	owners         []string // Go names of the types whose attribute uses it, in first-use order
	prefix         bool     // named owner+attribute: several value sets share the attribute name
}

// EnumValue is one member of an Enum.
type EnumValue struct {
	ID            int64
	Caption, Desc string
	GoName        string
}

func loadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw rawSchema
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if raw.Version != "1.8.0" {
		return nil, fmt.Errorf("schema version %q, want 1.8.0", raw.Version)
	}
	m := &Model{Version: raw.Version, Types: raw.Dictionary.Types.Attributes, LinuxExt: raw.Extensions["linux"]}
	byUID := map[int]*rawType{}
	for _, c := range raw.Classes {
		if c.UID != 0 {
			byUID[c.UID] = c
		}
	}
	objects := map[string]*Type{}
	var resolve func(name string) *Type
	var build func(rt *rawType, t *Type)
	resolve = func(name string) *Type {
		if t, ok := objects[name]; ok {
			return t
		}
		rt := raw.Objects[name]
		if rt == nil {
			panic("unknown object " + name)
		}
		t := &Type{Name: rt.Name, Caption: rt.Caption, Desc: rt.Description, GoName: goTypeName(rt.Name)}
		objects[name] = t
		if name == "object" {
			t.FreeForm = true
			return t
		}
		build(rt, t)
		return t
	}
	build = func(rt *rawType, t *Type) {
		names := make([]string, 0, len(rt.Attributes))
		for n := range rt.Attributes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ra := rt.Attributes[n]
			if !keepAttr(ra) {
				continue
			}
			a := &Attr{
				Name: n, Caption: ra.Caption, Desc: ra.Description, GoName: goFieldName(n),
				OCSFType: ra.Type, Required: ra.Requirement == "required", Recommended: ra.Requirement == "recommended",
				Profiles: ra.Profiles, Array: ra.IsArray, Sibling: ra.Sibling, Deprecated: len(ra.Deprecated) > 0,
			}
			a.Base = baseType(ra.Type, m.Types)
			if a.Required && len(a.Profiles) > 0 {
				// No attribute of sandtrail's profile set is profile-required in 1.8.0;
				// fail loudly if a schema update changes that.
				panic(fmt.Sprintf("%s.%s: profile-required attributes are not supported", rt.Name, n))
			}
			if ra.Type == "object_t" {
				a.Object = resolve(ra.ObjectType)
			}
			if len(ra.Enum) > 0 {
				if a.Base != "integer_t" && a.Base != "long_t" {
					a.Enum = nil // string enums (http_method, tlp, depth) are open-ended suggestions
				} else {
					a.Enum = m.enumFor(t, n, ra.Enum)
				}
			}
			t.Attrs = append(t.Attrs, a)
		}
		byName := map[string]*Attr{}
		for _, a := range t.Attrs {
			byName[a.Name] = a
		}
		for _, a := range t.Attrs {
			if a.Sibling != "" {
				if s := byName[a.Sibling]; s != nil && a.Enum != nil {
					s.SiblingOf = a.Name
				} else {
					a.Sibling = ""
				}
			}
		}
		for kind, list := range rt.Constraints {
			var kept []string
			for _, n := range list {
				if byName[n] != nil {
					kept = append(kept, n)
				}
			}
			switch kind {
			case "at_least_one":
				t.AtLeastOne = kept
			case "just_one":
				t.JustOne = kept
			default:
				panic("unknown constraint " + kind)
			}
		}
	}
	for _, uid := range wantClasses {
		rc := byUID[uid]
		if rc == nil {
			return nil, fmt.Errorf("class %d not in schema", uid)
		}
		t := &Type{Name: rc.Name, Caption: rc.Caption, Desc: rc.Description, GoName: goTypeName(rc.Name),
			IsClass: true, UID: rc.UID, CategoryUID: rc.CategoryUID, CategoryName: rc.CategoryName}
		build(rc, t)
		m.Classes = append(m.Classes, t)
	}
	for _, o := range objects {
		m.Objects = append(m.Objects, o)
	}
	sort.Slice(m.Objects, func(i, j int) bool { return m.Objects[i].Name < m.Objects[j].Name })
	for i, o := range m.Objects {
		o.Index = i
	}
	for i, c := range m.Classes {
		c.Index = len(m.Objects) + i
	}
	m.nameEnums()
	for _, t := range append(append([]*Type(nil), m.Objects...), m.Classes...) {
		for _, a := range t.Attrs {
			if a.Enum == nil {
				continue
			}
			a.EnumName = a.Enum.GoName
			if a.Enum.prefix {
				a.EnumName = t.GoName + goFieldName(a.Name)
			}
		}
	}
	m.BaseAttr = baseAttrs(m, raw.Classes["base_event"])
	return m, nil
}

func keepAttr(ra *rawAttr) bool {
	if excludedExtensions[ra.Extension] {
		return false
	}
	if ra.Profiles == nil {
		return true
	}
	for _, p := range ra.Profiles {
		for _, q := range profileSet {
			if p == q {
				return true
			}
		}
	}
	return false
}

func baseType(t string, dict map[string]rawDictType) string {
	switch t {
	case "string_t", "integer_t", "long_t", "float_t", "boolean_t", "object_t", "json_t":
		return t
	}
	d, ok := dict[t]
	if !ok || d.Type == "" {
		panic("no base type for " + t)
	}
	return baseType(d.Type, dict)
}

// enumFor returns the shared enum for an attribute's value set, creating it.
func (m *Model) enumFor(owner *Type, attr string, raw map[string]rawEnumValue) *Enum {
	var vals []EnumValue
	for k, v := range raw {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("%s.%s: enum key %q", owner.Name, attr, k))
		}
		vals = append(vals, EnumValue{ID: id, Caption: v.Caption, Desc: v.Description})
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i].ID < vals[j].ID })
	var sb strings.Builder
	sb.WriteString(attr)
	for _, v := range vals {
		fmt.Fprintf(&sb, "|%d=%s", v.ID, v.Caption)
	}
	key := sb.String()
	for _, e := range m.Enums {
		if e.key == key {
			e.addOwner(owner.GoName)
			return e
		}
	}
	e := &Enum{Attr: attr, Values: vals, key: key, GoName: owner.GoName, owners: []string{owner.GoName}} // GoName prefix fixed in nameEnums
	for _, v := range vals {
		if v.ID == 0 && v.Caption != "Unknown" {
			e.ZeroMeaningful = true
		}
	}
	m.Enums = append(m.Enums, e)
	return e
}

func (e *Enum) addOwner(name string) {
	for _, o := range e.owners {
		if o == name {
			return
		}
	}
	e.owners = append(e.owners, name)
}

// Aliases returns the owner-specific names under which a shared enum is
// also offered (DetectionFindingActivityID for ComplianceFindingActivityID).
func (e *Enum) Aliases() []string {
	if !e.prefix {
		return nil
	}
	var out []string
	for _, o := range e.owners {
		if n := o + goFieldName(e.Attr); n != e.GoName {
			out = append(out, n)
		}
	}
	return out
}

// nameEnums gives each enum its Go name: the attribute's name when only one
// value set exists for that attribute, else owner + attribute.
func (m *Model) nameEnums() {
	perAttr := map[string]int{}
	for _, e := range m.Enums {
		perAttr[e.Attr]++
	}
	used := map[string]bool{}
	for _, e := range m.Enums {
		name := goFieldName(e.Attr)
		if perAttr[e.Attr] > 1 {
			name = e.GoName + name
			e.prefix = true
		}
		for used[name] {
			name += "X"
		}
		used[name] = true
		e.GoName = name
		seen := map[string]bool{}
		for i := range e.Values {
			v := &e.Values[i]
			c := identifier(v.Caption)
			if c == "" || seen[c] {
				c += strconv.FormatInt(v.ID, 10)
			}
			seen[c] = true
			v.GoName = name + c
		}
	}
	sort.Slice(m.Enums, func(i, j int) bool { return m.Enums[i].GoName < m.Enums[j].GoName })
}

// baseAttrs are base_event attributes that every generated class carries
// with an identical definition; they form the embedded Base struct.
func baseAttrs(m *Model, base *rawType) map[string]bool {
	out := map[string]bool{}
	for name := range base.Attributes {
		switch name {
		case "activity_id", "activity_name", "class_uid", "class_name", "category_uid", "category_name", "type_uid", "type_name":
			continue
		}
		var first *Attr
		same := true
		for _, c := range m.Classes {
			a := c.attr(name)
			if a == nil {
				same = false
				break
			}
			if first == nil {
				first = a
				continue
			}
			if a.OCSFType != first.OCSFType || a.Enum != first.Enum || a.Object != first.Object || a.Array != first.Array ||
				a.Required != first.Required || a.Sibling != first.Sibling || a.SiblingOf != first.SiblingOf {
				same = false
				break
			}
		}
		if same && first != nil {
			out[name] = true
		}
	}
	// A caption sibling goes with its id.
	for _, c := range m.Classes[:1] {
		for _, a := range c.Attrs {
			if a.SiblingOf != "" && out[a.Name] != out[a.SiblingOf] {
				delete(out, a.Name)
				delete(out, a.SiblingOf)
			}
		}
	}
	return out
}

func (t *Type) attr(name string) *Attr {
	for _, a := range t.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Go naming.

var initialisms = map[string]string{
	"id": "ID", "uid": "UID", "uuid": "UUID", "ip": "IP", "url": "URL", "os": "OS", "pid": "PID", "tid": "TID",
	"cpid": "CPID", "ptid": "PTID", "api": "API", "dns": "DNS", "http": "HTTP", "tls": "TLS", "mac": "MAC",
	"cpu": "CPU", "gpu": "GPU", "ram": "RAM", "uri": "URI", "ssl": "SSL", "tcp": "TCP", "udp": "UDP", "vpc": "VPC",
	"cve": "CVE", "cwe": "CWE", "cvss": "CVSS", "epss": "EPSS", "sso": "SSO", "scim": "SCIM", "ldap": "LDAP",
	"idp": "IDP", "auid": "AUID", "euid": "EUID", "egid": "EGID", "gid": "GID", "imei": "IMEI", "ttl": "TTL",
	"json": "JSON", "kb": "KB", "md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "ja4": "JA4", "hw": "HW",
	"cpe": "CPE", "sid": "SID", "utc": "UTC", "vlan": "VLAN", "isp": "ISP", "sni": "SNI", "san": "SAN",
	"dt": "DT", "xml": "XML", "cis": "CIS", "tlp": "TLP", "ntlm": "NTLM", "mfa": "MFA", "iccid": "ICCID",
	"ssid": "SSID", "bssid": "BSSID", "eid": "EID", "udid": "UDID", "meid": "MEID", "imsi": "IMSI", "d3f": "D3F",
}

func goFieldName(s string) string {
	var sb strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		if v, ok := initialisms[part]; ok {
			sb.WriteString(v)
			continue
		}
		sb.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return sb.String()
}

func goTypeName(s string) string { return goFieldName(s) }

// identifier turns a caption into a Go identifier fragment.
func identifier(caption string) string {
	var sb strings.Builder
	up := true
	for _, r := range caption {
		switch {
		case r >= 'a' && r <= 'z':
			if up {
				r -= 'a' - 'A'
			}
			sb.WriteRune(r)
			up = false
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9' && sb.Len() > 0:
			sb.WriteRune(r)
			up = false
		case r >= '0' && r <= '9':
			sb.WriteString("N")
			sb.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return sb.String()
}
