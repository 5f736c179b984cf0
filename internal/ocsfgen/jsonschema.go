package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// patterns are the JSON Schema patterns of OCSF typed strings. They follow
// the OCSF dictionary with two corrections, so that the JSON Schema and the
// generated validator agree on what the types mean: every pattern is
// anchored (the OCSF uuid_t regex is not, and JSON Schema patterns are
// unanchored searches), and ip_t's dots are escaped (OCSF's "." matches any
// character) without the surrounding-whitespace allowance.
var patterns = map[string]string{
	"uuid_t":       `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`,
	"mac_t":        `^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$`,
	"datetime_t":   `^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?([Zz]|[\+-]\d{2}:\d{2})?$`,
	"email_t":      "^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\\.[a-zA-Z0-9-.]+$",
	"bytestring_t": `^(?:(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)|(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=))?$`,
	"ip_t":         ipPattern,
}

const ipv4 = `(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}`
const h16 = `[0-9A-Fa-f]{1,4}`

var ipPattern = `^(` + ipv4 + `|(` +
	`(` + h16 + `:){7}(` + h16 + `|:)|` +
	`(` + h16 + `:){6}(:` + h16 + `|` + ipv4 + `|:)|` +
	`(` + h16 + `:){5}(((:` + h16 + `){1,2})|:` + ipv4 + `|:)|` +
	`(` + h16 + `:){4}(((:` + h16 + `){1,3})|((:` + h16 + `)?:` + ipv4 + `)|:)|` +
	`(` + h16 + `:){3}(((:` + h16 + `){1,4})|((:` + h16 + `){0,2}:` + ipv4 + `)|:)|` +
	`(` + h16 + `:){2}(((:` + h16 + `){1,5})|((:` + h16 + `){0,3}:` + ipv4 + `)|:)|` +
	`(` + h16 + `:){1}(((:` + h16 + `){1,6})|((:` + h16 + `){0,4}:` + ipv4 + `)|:)|` +
	`(:(((:` + h16 + `){1,7})|((:` + h16 + `){0,5}:` + ipv4 + `)|:))` +
	`)(%[0-9A-Za-z_.~-]+)?)$`

type jsonObj = map[string]any

func genJSONSchema(m *Model, c *Type) ([]byte, error) {
	defs := jsonObj{}
	var need []*Type
	seen := map[*Type]bool{}
	var walk func(t *Type)
	walk = func(t *Type) {
		for _, a := range t.Attrs {
			if o := a.Object; o != nil && !o.FreeForm && !seen[o] {
				seen[o] = true
				need = append(need, o)
				walk(o)
			}
		}
	}
	walk(c)
	sort.Slice(need, func(i, j int) bool { return need[i].Name < need[j].Name })
	for _, o := range need {
		defs[o.Name] = typeSchema(m, o)
	}
	root := typeSchema(m, c)
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = fmt.Sprintf("https://schema.sandtrail.dev/ocsf/%s/%s.json", m.Version, c.Name)
	root["title"] = fmt.Sprintf("%s (%d), OCSF %s, sandtrail profile set", c.Caption, c.UID, m.Version)
	root["definitions"] = defs
	return json.MarshalIndent(root, "", "  ")
}

func typeSchema(m *Model, t *Type) jsonObj {
	props := jsonObj{}
	var req []string
	for _, a := range t.Attrs {
		props[a.Name] = attrSchema(m, t, a)
		if a.Required {
			req = append(req, a.Name)
		}
	}
	s := jsonObj{
		"type":                 "object",
		"description":          docSentence(t.Desc),
		"properties":           props,
		"additionalProperties": false,
	}
	if t.IsClass {
		// Written by the generated code; JSON Schema can say these.
		props["class_uid"] = jsonObj{"const": t.UID}
		props["class_name"] = jsonObj{"const": t.Caption}
		props["category_uid"] = jsonObj{"const": t.CategoryUID}
		props["category_name"] = jsonObj{"const": t.CategoryName}
	}
	if t.Name == "metadata" {
		props["version"] = jsonObj{"const": m.Version}
		props["profiles"] = jsonObj{"type": "array", "items": jsonObj{"enum": profileSet}}
	}
	if len(req) > 0 {
		s["required"] = req
	}
	var all []any
	if len(t.AtLeastOne) > 0 {
		var any []any
		for _, n := range t.AtLeastOne {
			any = append(any, jsonObj{"required": []string{n}})
		}
		all = append(all, jsonObj{"anyOf": any})
	}
	if len(t.JustOne) > 0 {
		var one []any
		for _, n := range t.JustOne {
			one = append(one, jsonObj{"required": []string{n}})
		}
		all = append(all, jsonObj{"oneOf": one})
	}
	if len(all) > 0 {
		s["allOf"] = all
	}
	return s
}

func attrSchema(m *Model, t *Type, a *Attr) jsonObj {
	var s jsonObj
	switch {
	case a.Enum != nil:
		var ids []int64
		for _, v := range a.Enum.Values {
			ids = append(ids, v.ID)
		}
		s = jsonObj{"type": "integer", "enum": ids}
	case a.Base == "object_t" && a.Object.FreeForm:
		s = jsonObj{"type": "object"}
	case a.Base == "object_t":
		s = jsonObj{"$ref": "#/definitions/" + a.Object.Name}
	case a.Base == "json_t":
		s = jsonObj{"not": jsonObj{"type": "null"}}
	case a.Base == "string_t":
		s = jsonObj{"type": "string"}
		if p, ok := patterns[a.OCSFType]; ok {
			s["pattern"] = p
		}
		if n := m.Types[a.OCSFType].MaxLen; n > 0 {
			s["maxLength"] = n
		}
	case a.OCSFType == "port_t":
		s = jsonObj{"type": "integer", "minimum": 0, "maximum": 65535}
	case a.Base == "integer_t":
		s = jsonObj{"type": "integer", "minimum": math.MinInt32, "maximum": math.MaxInt32}
	case a.Base == "long_t":
		s = jsonObj{"type": "integer"}
	case a.Base == "float_t":
		s = jsonObj{"type": "number"}
	case a.Base == "boolean_t":
		s = jsonObj{"type": "boolean"}
	default:
		panic("schema of " + a.OCSFType)
	}
	if a.Array {
		s = jsonObj{"type": "array", "items": s}
	}
	s["description"] = oneLine(a.Caption) + " (" + a.OCSFType + ")"
	return s
}
