package collector

import (
	"cmp"
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigError is one problem in a configuration file.
type ConfigError struct {
	File   string // "" when unknown
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	// Field is the dotted path of the offending key or value, e.g.
	// sinks[2].filter.classes[0]; "" for the whole document.
	Field string
	Msg   string
}

// Error formats the problem as FILE:LINE:COL: FIELD: MSG, leaving out the
// parts that are unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every problem found, when there is more than one, in
// file order.
type ConfigErrors []*ConfigError

func (e ConfigErrors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As.
func (e ConfigErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, err := range e {
		out[i] = err
	}
	return out
}

// DecodeStrict decodes a YAML node into out (a non-nil pointer, normally
// to a sink's Config struct) and rejects what a lenient decoder would let
// through: unknown keys (with a suggestion), duplicate keys, aliases,
// custom tags, a mapping where a list is wanted and the like, and bare
// numbers for time.Duration fields (want "30s", not 30). Field names come
// from `yaml` tags (or the lowercased Go name, as yaml.v3 does); `,inline`
// structs are merged; a *yaml.Node or yaml.Node field takes the raw node;
// types implementing yaml.Unmarshaler or encoding.TextUnmarshaler decode
// themselves. Keys that look like inline secrets (password, token,
// secret...) get a message pointing at their _file/_env form.
//
// file names the file in errors. Every problem is reported, as
// FILE:LINE:COL: FIELD: MSG: one *ConfigError, or ConfigErrors when there
// are several. A nil node or an empty document leaves out unchanged.
func DecodeStrict(node *yaml.Node, file string, out any) error {
	w := &walker{file: file}
	w.decode(node, out, "")
	return w.result()
}

// walker decodes strictly and collects every problem.
type walker struct {
	file string
	errs []*ConfigError
	pos  map[string]*yaml.Node // field path -> its value node
}

func (w *walker) decode(node *yaml.Node, out any, path string) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		w.errs = append(w.errs, &ConfigError{File: w.file, Field: path, Msg: fmt.Sprintf("decode into %T: want a non-nil pointer", out)})
		return
	}
	if node == nil {
		return
	}
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return
		}
		node = node.Content[0]
	}
	w.value(node, v.Elem(), path)
}

func (w *walker) result() error {
	switch len(w.errs) {
	case 0:
		return nil
	case 1:
		return w.errs[0]
	}
	out := slices.Clone(w.errs)
	slices.SortStableFunc(out, func(a, b *ConfigError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return ConfigErrors(out)
}

func (w *walker) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &ConfigError{File: w.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	w.errs = append(w.errs, e)
}

var (
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
	unmarshaler  = reflect.TypeFor[yaml.Unmarshaler]()
	textType     = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (w *walker) value(n *yaml.Node, v reflect.Value, path string) {
	if w.pos != nil {
		w.pos[path] = n
	}
	if n.Kind == yaml.AliasNode {
		w.errorf(n, path, "aliases are not allowed")
		return
	}
	switch n.ShortTag() {
	case "!!map", "!!seq", "!!str", "!!int", "!!bool", "!!float", "!!null", "!!timestamp", "!!binary":
	default:
		w.errorf(n, path, "unsupported tag %s", n.Tag)
		return
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case t.Kind() == reflect.Pointer && t.Elem() == nodeType:
		v.Set(reflect.ValueOf(n))
		return
	case n.ShortTag() == "!!null":
		v.SetZero()
		return
	case reflect.PointerTo(t).Implements(unmarshaler):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.errorf(n, path, "%s", yamlMessage(err))
		}
		return
	case reflect.PointerTo(t).Implements(textType):
		if n.Kind != yaml.ScalarNode {
			w.errorf(n, path, "want a string, got %s", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			w.errorf(n, path, "%v", err)
		}
		return
	case t == durationType:
		w.duration(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		w.value(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		w.object(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			w.value(e, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.Map:
		w.mapping(n, v, path)
	case reflect.Interface:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.errorf(n, path, "%s", yamlMessage(err))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.errorf(n, path, "want %s, got %s", kindName(t), describe(n))
			return
		}
		if !scalarFits(n, t) {
			w.errorf(n, path, "want %s, got %s", kindName(t), describe(n))
			return
		}
		p := reflect.New(t)
		if err := n.Decode(p.Interface()); err != nil {
			w.errorf(n, path, "want %s, got %s", kindName(t), describe(n))
			return
		}
		v.Set(p.Elem())
	}
}

func (w *walker) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		w.errorf(n, path, "want a duration with a unit, such as 30s or 5m, got %s", describe(n))
		return
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		w.errorf(n, path, "want a duration with a unit, such as 30s or 5m, got %q", n.Value)
		return
	}
	v.SetInt(int64(d))
}

// fieldsOf maps the YAML keys of a struct to its field index paths,
// merging ,inline structs.
func fieldsOf(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for k, idx := range fieldsOf(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func (w *walker) object(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			w.errorf(k, path, "a key must be a string, got %s", describe(k))
			continue
		}
		field := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			w.errorf(k, field, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			w.errorf(k, field, "%s", unknownKey(k.Value, fields))
			continue
		}
		w.value(val, v.FieldByIndex(idx), field)
	}
}

func (w *walker) mapping(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		field := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			w.errorf(k, field, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		kv := reflect.New(t.Key()).Elem()
		w.value(k, kv, field)
		ev := reflect.New(t.Elem()).Elem()
		w.value(val, ev, field)
		m.SetMapIndex(kv, ev)
	}
	v.Set(m)
}

// secretWords are keys that would hold a secret inline.
var secretWords = []string{"password", "passwd", "token", "secret", "api_key", "apikey", "key_password", "credentials"}

func unknownKey(key string, fields map[string][]int) string {
	lower := strings.ToLower(key)
	for _, s := range secretWords {
		if lower == s || strings.HasSuffix(lower, "_"+s) {
			hint := ""
			for _, suffix := range []string{"_file", "_env"} {
				if _, ok := fields[key+suffix]; ok {
					hint += " " + key + suffix
				}
			}
			if hint != "" {
				return "secrets are never written inline: use " + strings.Replace(strings.TrimSpace(hint), " ", " or ", 1)
			}
			return "secrets are never written inline: give a file or an environment variable"
		}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	if near := nearest(key, names); near != "" {
		return "unknown key (did you mean " + near + "?)"
	}
	if len(names) == 0 {
		return "unknown key (none are allowed here)"
	}
	return "unknown key (known: " + strings.Join(names, ", ") + ")"
}

// nearest returns the candidate within edit distance 2 of s, if one is.
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "the boolean " + n.Value
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	}
	return strconv.Quote(n.Value)
}

// scalarFits rejects what yaml.v3 would convert silently: a number cut to
// an integer, a number or boolean where a boolean or number is wanted.
func scalarFits(n *yaml.Node, t reflect.Type) bool {
	tag := n.ShortTag()
	switch t.Kind() {
	case reflect.Bool:
		return tag == "!!bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return tag == "!!int"
	case reflect.Float32, reflect.Float64:
		return tag == "!!int" || tag == "!!float"
	}
	return true
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// yamlMessage strips yaml.v3's "yaml: unmarshal errors:\n  line N: " frame.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, "line ") {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
	}
	return msg
}
