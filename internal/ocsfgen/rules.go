package main

import (
	"fmt"
	"strings"
)

// formats maps OCSF typed strings (and port_t) to the validator's format checks.
var formats = map[string]string{
	"uuid_t": "fmtUUID", "ip_t": "fmtIP", "mac_t": "fmtMAC", "subnet_t": "fmtSubnet",
	"datetime_t": "fmtDatetime", "email_t": "fmtEmail", "bytestring_t": "fmtBytes", "port_t": "fmtPort",
}

func kindOf(a *Attr) string {
	switch {
	case a.Base == "object_t" && a.Object.FreeForm:
		return "kindFree"
	case a.Base == "object_t":
		return "kindObject"
	case a.Base == "json_t":
		return "kindJSON"
	case a.Base == "string_t":
		return "kindString"
	case a.Base == "integer_t":
		return "kindInt"
	case a.Base == "long_t":
		return "kindLong"
	case a.Base == "float_t":
		return "kindFloat"
	case a.Base == "boolean_t":
		return "kindBool"
	}
	panic("kind of " + a.OCSFType)
}

func profileMask(ps []string) int {
	mask := 0
	for _, p := range ps {
		for i, q := range profileSet {
			if p == q {
				mask |= 1 << i
			}
		}
	}
	return mask
}

func allTypes(m *Model) []*Type {
	return append(append([]*Type(nil), m.Objects...), m.Classes...)
}

func genRules(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, header, m.Version)
	b.WriteString("package schema\n\n")
	enumIndex := map[*Enum]int{}
	for i, e := range m.Enums {
		enumIndex[e] = i
	}
	fmt.Fprintf(&b, "// profileNames are sandtrail's OCSF profiles, in profile-bit order.\nvar profileNames = [...]string{%s}\n\n", quoteList(profileSet))
	fmt.Fprintf(&b, "// ocsfVersion is the only metadata.version the validator accepts.\nconst ocsfVersion = %q\n\n", m.Version)
	fmt.Fprintf(&b, "// linuxExtension is the extension that declares the linux/linux_users profile.\nvar linuxExtension = struct{ UID, Name, Version string }{%q, %q, %q}\n\n",
		fmt.Sprint(m.LinuxExt.UID), m.LinuxExt.Name, m.LinuxExt.Version)

	b.WriteString("var enumRules = [...]enumRule{\n")
	for _, e := range m.Enums {
		var ids, caps []string
		other := false
		for _, v := range e.Values {
			ids = append(ids, fmt.Sprint(v.ID))
			caps = append(caps, fmt.Sprintf("%q", v.Caption))
			if v.ID == 99 {
				other = true
			}
		}
		fmt.Fprintf(&b, "\t{name: %q, ids: []int64{%s}, captions: []string{%s}, other: %v},\n", e.GoName, strings.Join(ids, ", "), strings.Join(caps, ", "), other)
	}
	b.WriteString("}\n\n")

	types := allTypes(m)
	maxSlots := 0
	b.WriteString("var typeRules = [...]typeRule{\n")
	for _, t := range types {
		if len(t.Attrs) > 128 {
			panic(t.Name + ": more than 128 attributes")
		}
		idx := map[string]int{}
		for i, a := range t.Attrs {
			idx[a.Name] = i
		}
		slot := map[string]int{}
		for _, a := range t.Attrs {
			if a.Enum != nil && !a.Array {
				slot[a.Name] = len(slot)
			}
		}
		if len(slot) > maxSlots {
			maxSlots = len(slot)
		}
		fmt.Fprintf(&b, "\t%d: {index: %d, name: %q, classUID: %d, freeForm: %v, slots: %d,\n", t.Index, t.Index, t.Name, t.UID, t.FreeForm, len(slot))
		var req [2]uint64
		for i, a := range t.Attrs {
			if a.Required {
				req[i/64] |= 1 << (i % 64)
			}
		}
		fmt.Fprintf(&b, "\t\trequired: bitset{%#x, %#x},\n", req[0], req[1])
		if len(t.AtLeastOne) > 0 {
			fmt.Fprintf(&b, "\t\tatLeastOne: []int{%s},\n", indexList(t.AtLeastOne, idx))
		}
		if len(t.JustOne) > 0 {
			fmt.Fprintf(&b, "\t\tjustOne: []int{%s},\n", indexList(t.JustOne, idx))
		}
		b.WriteString("\t\tattrs: []attrRule{\n")
		for _, a := range t.Attrs {
			obj, enum, sl, sib := -1, -1, -1, -1
			if a.Object != nil {
				obj = a.Object.Index
			}
			if a.Enum != nil {
				enum = enumIndex[a.Enum]
			}
			if s, ok := slot[a.Name]; ok {
				sl = s
			}
			if a.SiblingOf != "" {
				if s, ok := slot[a.SiblingOf]; ok {
					sib = s
				}
			}
			f := formats[a.OCSFType]
			if f == "" {
				f = "fmtNone"
			}
			maxLen := m.Types[a.OCSFType].MaxLen
			fmt.Fprintf(&b, "\t\t\t{name: %q, kind: %s, format: %s, array: %v, required: %v, object: %d, enum: %d, slot: %d, sibling: %d, profiles: %d, maxLen: %d},\n",
				a.Name, kindOf(a), f, a.Array, a.Required, obj, enum, sl, sib, profileMask(a.Profiles), maxLen)
		}
		b.WriteString("\t\t},\n\t},\n")
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "// maxSlots bounds the enum attributes of one type.\nconst maxSlots = %d\n\n", maxSlots)

	for _, t := range types {
		switch t.Name {
		case "metadata", "extension", "observable":
			fmt.Fprintf(&b, "const rule%s = %d\n", t.GoName, t.Index)
		}
	}
	b.WriteString("\n")
	b.WriteString("// classRuleIndex maps class_uid to its typeRules index.\nfunc classRuleIndex(uid int64) int {\n\tswitch uid {\n")
	for _, c := range m.Classes {
		fmt.Fprintf(&b, "\tcase %d:\n\t\treturn %d\n", c.UID, c.Index)
	}
	b.WriteString("\t}\n\treturn -1\n}\n\n")

	b.WriteString("// lookupAttr returns the index of attribute k in typeRules[t], or -1.\n// A direct switch, not a func value, so that k does not escape.\nfunc lookupAttr(t int, k string) int {\n\tswitch t {\n")
	for _, t := range types {
		fmt.Fprintf(&b, "\tcase %d:\n\t\treturn lookup%s(k)\n", t.Index, t.GoName+kindSuffix(t))
	}
	b.WriteString("\t}\n\treturn -1\n}\n\n")
	for _, t := range types {
		fmt.Fprintf(&b, "func lookup%s(k string) int {\n", t.GoName+kindSuffix(t))
		if len(t.Attrs) == 0 {
			b.WriteString("\treturn -1\n}\n\n")
			continue
		}
		b.WriteString("\tswitch k {\n")
		for i, a := range t.Attrs {
			fmt.Fprintf(&b, "\tcase %q:\n\t\treturn %d\n", a.Name, i)
		}
		b.WriteString("\t}\n\treturn -1\n}\n\n")
	}
	return b.String()
}

func kindSuffix(t *Type) string {
	if t.IsClass {
		return "Class"
	}
	return ""
}

func indexList(names []string, idx map[string]int) string {
	var out []string
	for _, n := range names {
		out = append(out, fmt.Sprint(idx[n]))
	}
	return strings.Join(out, ", ")
}

func quoteList(ss []string) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%q", s))
	}
	return strings.Join(out, ", ")
}
