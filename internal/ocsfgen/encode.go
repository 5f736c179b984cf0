package main

import (
	"fmt"
	"strings"
)

// genEncoders writes an append-style JSON encoder per type, so that the
// emitter encodes without reflection and MarshalJSON agrees with it.
// Semantics follow the struct tags: omitted when empty exactly where the
// tag says omitempty; caption siblings derived from their enum ids as
// siblingFixes does.
func genEncoders(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, header, m.Version)
	b.WriteString("package schema\n\nimport \"strconv\"\n\n")
	for _, o := range m.Objects {
		if o.FreeForm {
			continue
		}
		fmt.Fprintf(&b, "// MarshalJSON encodes x as OCSF JSON, caption siblings set from their ids.\n")
		fmt.Fprintf(&b, "func (x %s) MarshalJSON() ([]byte, error) { return x.appendJSON(nil) }\n\n", o.GoName)
		fmt.Fprintf(&b, "func (x *%s) appendJSON(b []byte) ([]byte, error) {\n\tvar err error\n\t_ = err\n\tb = append(b, '{')\n\tfirst := true\n", o.GoName)
		writeAttrEncoders(&b, o.Attrs, "x")
		b.WriteString("\treturn append(b, '}'), nil\n}\n\n")
	}
	for _, c := range m.Classes {
		var attrs []*Attr
		for _, a := range c.Attrs {
			if !classFixed[a.Name] {
				attrs = append(attrs, a)
			}
		}
		fmt.Fprintf(&b, "// MarshalJSON encodes e as OCSF JSON: class_uid first, then the class,\n// category and type attributes, then every other attribute by name.\n")
		fmt.Fprintf(&b, "func (e %s) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }\n\n", c.GoName)
		fmt.Fprintf(&b, "// AppendJSON appends the encoding of e to b.\nfunc (e *%s) AppendJSON(b []byte) ([]byte, error) {\n\tvar err error\n\t_ = err\n", c.GoName)
		fmt.Fprintf(&b, "\tb = append(b, `{\"class_uid\":%d,\"class_name\":%q,\"category_uid\":%d,\"category_name\":%q,\"type_uid\":`...)\n", c.UID, c.Caption, c.CategoryUID, c.CategoryName)
		b.WriteString("\tb = strconv.AppendInt(b, e.TypeUID(), 10)\n")
		fmt.Fprintf(&b, "\tb = append(b, `,\"type_name\":`...)\n\tactivity := e.ActivityName\n\tif e.ActivityID != 99 {\n\t\tactivity = e.ActivityID.Caption()\n\t}\n")
		fmt.Fprintf(&b, "\tb = appendString(b, %q+activity)\n\tfirst := false\n", c.Caption+": ")
		writeAttrEncoders(&b, attrs, "e")
		b.WriteString("\treturn append(b, '}'), nil\n}\n\n")
	}
	return b.String()
}

func writeAttrEncoders(b *strings.Builder, attrs []*Attr, recv string) {
	byName := map[string]*Attr{}
	for _, a := range attrs {
		byName[a.Name] = a
	}
	for _, a := range attrs {
		f := recv + "." + a.GoName
		key := fmt.Sprintf("\tb = appendKey(b, &first, %q)\n", a.Name)
		if id := byName[a.SiblingOf]; a.SiblingOf != "" && id != nil && id.Enum != nil && !id.Array {
			idf := recv + "." + id.GoName
			if t, _ := goType(id); strings.HasPrefix(t, "*") {
				fmt.Fprintf(b, "\tif %s != nil {\n\t\tif s := caption(%s.Caption(), int64(*%s), %s, true); s != \"\" {\n%s\t\t\tb = appendString(b, s)\n\t\t}\n\t}\n",
					idf, idf, idf, f, indent(indent(key)))
				continue
			}
			fmt.Fprintf(b, "\tif s := caption(%s.Caption(), int64(%s), %s, %v); s != \"\" {\n%s\t\tb = appendString(b, s)\n\t}\n",
				idf, idf, f, id.Required, indent(key))
			continue
		}
		_, omit := goType(a)
		switch {
		case a.Array:
			fmt.Fprintf(b, "\tif len(%s) > 0 {\n%s\t\tb = append(b, '[')\n\t\tfor i := range %s {\n\t\t\tif i > 0 {\n\t\t\t\tb = append(b, ',')\n\t\t\t}\n", f, indent(key), f)
			fmt.Fprintf(b, "%s\t\t}\n\t\tb = append(b, ']')\n\t}\n", indent(indent(elemEncoder(a, f+"[i]"))))
		case a.Base == "object_t" && a.Object.FreeForm, a.Base == "json_t":
			fmt.Fprintf(b, "\tif %s != nil {\n%s\t\tif b, err = appendAny(b, %s); err != nil {\n\t\t\treturn nil, err\n\t\t}\n\t}\n", f, indent(key), f)
		case a.Base == "object_t":
			fmt.Fprintf(b, "\tif %s != nil {\n%s\t\tif b, err = %s.appendJSON(b); err != nil {\n\t\t\treturn nil, err\n\t\t}\n\t}\n", f, indent(key), f)
		default:
			t, _ := goType(a)
			cond := ""
			val := f
			if strings.HasPrefix(t, "*") {
				cond = f + " != nil"
				val = "*" + f
			} else if omit {
				switch {
				case t == "string":
					cond = f + ` != ""`
				case t == "bool":
					cond = f
				default:
					cond = f + " != 0"
				}
			}
			enc := key + scalarEncoder(a, val)
			if cond == "" {
				b.WriteString(enc)
			} else {
				fmt.Fprintf(b, "\tif %s {\n%s\t}\n", cond, indent(enc))
			}
		}
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "\t" + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// elemEncoder encodes one array element (never omitted).
func elemEncoder(a *Attr, v string) string {
	switch {
	case a.Base == "object_t" && a.Object.FreeForm, a.Base == "json_t":
		return fmt.Sprintf("\tif b, err = appendAny(b, %s); err != nil {\n\t\treturn nil, err\n\t}\n", v)
	case a.Base == "object_t":
		return fmt.Sprintf("\tif b, err = %s.appendJSON(b); err != nil {\n\t\treturn nil, err\n\t}\n", v)
	}
	return scalarEncoder(a, v)
}

func scalarEncoder(a *Attr, v string) string {
	switch {
	case a.Enum != nil:
		return fmt.Sprintf("\tb = strconv.AppendInt(b, int64(%s), 10)\n", v)
	case a.Base == "string_t":
		return fmt.Sprintf("\tb = appendString(b, %s)\n", v)
	case a.Base == "integer_t":
		return fmt.Sprintf("\tb = strconv.AppendInt(b, int64(%s), 10)\n", v)
	case a.Base == "long_t":
		return fmt.Sprintf("\tb = strconv.AppendInt(b, %s, 10)\n", v)
	case a.Base == "float_t":
		return fmt.Sprintf("\tif b, err = appendFloat(b, %s); err != nil {\n\t\treturn nil, err\n\t}\n", v)
	case a.Base == "boolean_t":
		return fmt.Sprintf("\tb = strconv.AppendBool(b, %s)\n", v)
	}
	panic("scalar encoder for " + a.OCSFType)
}
