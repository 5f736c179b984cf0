package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// walker decodes a node tree strictly, collecting every problem with its
// position instead of stopping at the first, and remembering where each
// field was written so that later validation errors can point at it.
type walker struct {
	file string
	noun string // what a key is called in messages: "key" (policy), "field" (profile)
	errs []*Error
	pos  map[string]*yaml.Node // field path -> the node of its value
	// lists maps a list's path to the source index of each decoded
	// element, for lists where invalid elements were left out.
	lists map[string][]int
}

func newWalker(file string) *walker {
	return &walker{file: file, noun: "key", pos: map[string]*yaml.Node{}, lists: map[string][]int{}}
}

func (w *walker) errorf(n *yaml.Node, field, format string, args ...any) {
	w.errs = append(w.errs, &Error{File: w.file, Line: max(n.Line, 1), Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// adopt adds the errors of validating what w decoded: their fields are
// mapped back to the file's list indices, a field the decoder already
// reported a problem with (or within) is skipped, and each gets the position
// of its field, or of the nearest enclosing field written in the file.
func (w *walker) adopt(errs []*Error) {
	decoded := len(w.errs)
	for _, e := range errs {
		e.Field = w.sourceField(e.Field)
		if reported(w.errs[:decoded], e.Field) {
			continue
		}
		if list := parent(e.Field); strings.HasSuffix(e.Field, "]") && w.pos[list] == nil {
			e.Msg += " (" + list + " is not set in the file: this is its default)"
		}
		w.place(e)
		w.errs = append(w.errs, e)
	}
}

// reported says whether errs has a problem with field or a field enclosing
// it: one error per field, and the decoder's is the more precise.
func reported(errs []*Error, field string) bool {
	for _, e := range errs {
		for f := field; ; f = parent(f) {
			if e.Field == f {
				return true
			}
			if f == "" {
				break
			}
		}
	}
	return false
}

// place gives an error the position of its field, or of the nearest
// enclosing field that was written in the file.
func (w *walker) place(e *Error) {
	e.File = w.file
	for f := e.Field; ; f = parent(f) {
		if n, ok := w.pos[f]; ok {
			e.Line, e.Column = max(n.Line, 1), n.Column
			return
		}
		if f == "" {
			e.Line, e.Column = 1, 1
			return
		}
	}
}

// sourceField rewrites the list indices of a field path of the decoded
// policy into the indices the file has, where invalid elements were left
// out: a.b[1] -> a.b[3].
func (w *walker) sourceField(f string) string {
	var b strings.Builder
	for f != "" {
		i := strings.IndexByte(f, '[')
		j := strings.IndexByte(f, ']')
		if i < 0 || j < i {
			b.WriteString(f)
			break
		}
		b.WriteString(f[:i])
		n, err := strconv.Atoi(f[i+1 : j])
		if m, ok := w.lists[b.String()]; ok && err == nil && n >= 0 && n < len(m) {
			n = m[n]
		}
		b.WriteString("[" + strconv.Itoa(n) + "]")
		f = f[j+1:]
	}
	return b.String()
}

// parent strips the last element of a field path: a.b[2] -> a.b -> a -> "".
func parent(f string) string {
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndexByte(f, '['); i >= 0 {
			return f[:i]
		}
	}
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		return f[:i]
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe names what a node holds, for "want X, got Y" messages.
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
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return fmt.Sprintf("a %s value", n.ShortTag())
}

// check rejects what no field accepts: aliases and custom tags.
func (w *walker) check(n *yaml.Node, field string) bool {
	if n.Kind == yaml.AliasNode {
		w.errorf(n, field, "aliases are not allowed")
		return false
	}
	switch n.ShortTag() {
	case "!!map", "!!seq", "!!str", "!!int", "!!bool", "!!float", "!!null", "!!timestamp":
		return true
	}
	w.errorf(n, field, "unsupported tag %s", n.Tag)
	return false
}

type fieldFunc func(n *yaml.Node, field string)

// object decodes a mapping: every key must be one of fields, at most once.
// It returns the keys present; a missing key in required is an error.
func (w *walker) object(n *yaml.Node, path string, fields map[string]fieldFunc, required ...string) map[string]bool {
	seen := map[string]bool{}
	if !w.check(n, path) {
		return seen
	}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "want a mapping, got %s", describe(n))
		return seen
	}
	w.pos[path] = n
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			w.errorf(k, path, "a %s name must be a string, got %s", w.noun, describe(k))
			continue
		}
		field := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			w.errorf(k, field, "duplicate %s (first at line %d)", w.noun, line)
			continue
		}
		first[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			if near := nearest(k.Value, fields); near != "" {
				w.errorf(k, field, "unknown %s (did you mean %s?)", w.noun, near)
			} else {
				w.errorf(k, field, "unknown %s (want one of %s)", w.noun, keyList(fields))
			}
			continue
		}
		seen[k.Value] = true
		if !w.check(v, field) {
			continue
		}
		w.pos[field] = v
		f(v, field)
	}
	for _, k := range required {
		if !seen[k] {
			w.errorf(n, join(path, k), "missing")
		}
	}
	return seen
}

func keyList(fields map[string]fieldFunc) string {
	return strings.Join(slices.Sorted(maps.Keys(fields)), ", ")
}

// nearest returns the key of fields closest to s, if it is a likely typo:
// at most two edits away.
func nearest(s string, fields map[string]fieldFunc) string {
	best, bestDist := "", 3
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if d := editDistance(strings.ToLower(s), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// list decodes a sequence, calling f for each element; f reports whether it
// kept the element. A null is an empty list only when nullOK (profiles
// written by Go's encoding/json have them).
func (w *walker) list(n *yaml.Node, path string, nullOK bool, f func(n *yaml.Node, field string) bool) {
	if nullOK && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.ShortTag() == "!!null" {
			hint = " (write [] for an empty list)"
		}
		w.errorf(n, path, "want a list, got %s%s", describe(n), hint)
		return
	}
	var kept []int
	for i, e := range n.Content {
		field := index(path, i)
		if !w.check(e, field) {
			continue
		}
		w.pos[field] = e
		if f(e, field) {
			kept = append(kept, i)
		}
	}
	if len(kept) < len(n.Content) {
		w.lists[path] = kept
	}
}

// str decodes a string. Plain scalars YAML would read as numbers or dates
// are taken as written when anyScalar (names, versions).
func (w *walker) str(n *yaml.Node, field string, anyScalar bool) (string, bool) {
	tag := n.ShortTag()
	if n.Kind == yaml.ScalarNode && (tag == "!!str" || anyScalar && tag != "!!null" && tag != "!!bool") {
		return n.Value, true
	}
	w.errorf(n, field, "want a string, got %s", describe(n))
	return "", false
}

func (w *walker) boolean(n *yaml.Node, field string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", true
	}
	w.errorf(n, field, "want true or false, got %s", describe(n))
	return false, false
}

// uint decodes a non-negative integer no larger than maxVal.
func (w *walker) uint(n *yaml.Node, field string, maxVal uint64) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		w.errorf(n, field, "want an integer, got %s", describe(n))
		return 0, false
	}
	s := strings.TrimPrefix(strings.ReplaceAll(n.Value, "_", ""), "+")
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil || v > maxVal {
		w.errorf(n, field, "%s is out of range 0..%d", n.Value, maxVal)
		return 0, false
	}
	return v, true
}

// enum decodes a string that must be one of values.
func (w *walker) enum(n *yaml.Node, field string, values ...string) (string, bool) {
	s, ok := w.str(n, field, false)
	if !ok {
		return "", false
	}
	if !slices.Contains(values, s) {
		w.errorf(n, field, "unknown value %q (want %s)", s, strings.Join(values, ", "))
		return "", false
	}
	return s, true
}

func (w *walker) strings(n *yaml.Node, field string, nullOK bool) []string {
	if nullOK && n.ShortTag() == "!!null" {
		return nil
	}
	out := []string{}
	w.list(n, field, nullOK, func(e *yaml.Node, f string) bool {
		s, ok := w.str(e, f, false)
		if ok {
			out = append(out, s)
		}
		return ok
	})
	return out
}
