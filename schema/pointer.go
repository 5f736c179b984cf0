package schema

import (
	"strconv"
	"strings"
)

// pointerAt returns the JSON Pointer of the value or key that starts at
// byte offset off (or contains it). It is used only to report an error,
// so it favours simplicity over speed.
func pointerAt(data []byte, off int) string {
	w := walker{data: data, target: off}
	w.ws()
	w.value("")
	if w.found {
		return w.path
	}
	return w.best
}

type walker struct {
	data   []byte
	pos    int
	target int
	found  bool
	path   string
	best   string // deepest container entered before the target
}

func (w *walker) ws() {
	for w.pos < len(w.data) && strings.IndexByte(" \t\r\n", w.data[w.pos]) >= 0 {
		w.pos++
	}
}

func (w *walker) hit(path string) bool {
	if w.pos == w.target {
		w.found, w.path = true, path
		return true
	}
	return false
}

// value walks one value; it returns false to stop the walk.
func (w *walker) value(path string) bool {
	if w.hit(path) {
		return false
	}
	if w.pos > w.target {
		w.found, w.path = true, path
		return false
	}
	if w.pos >= len(w.data) {
		return false
	}
	switch w.data[w.pos] {
	case '{':
		w.best = path
		w.pos++
		for {
			w.ws()
			if w.pos >= len(w.data) {
				return false
			}
			if w.data[w.pos] == '}' {
				w.pos++
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				continue
			}
			keyStart := w.pos
			key, ok := w.str()
			if !ok {
				return false
			}
			child := path + "/" + escapePointer(key)
			if keyStart == w.target || (w.target > keyStart && w.target < w.pos) {
				w.found, w.path = true, child
				return false
			}
			w.ws()
			if w.pos < len(w.data) && w.data[w.pos] == ':' {
				w.pos++
			}
			w.ws()
			if !w.value(child) {
				return false
			}
		}
	case '[':
		w.best = path
		w.pos++
		for i := 0; ; {
			w.ws()
			if w.pos >= len(w.data) {
				return false
			}
			if w.data[w.pos] == ']' {
				w.pos++
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				i++
				continue
			}
			if !w.value(path + "/" + strconv.Itoa(i)) {
				return false
			}
		}
	case '"':
		start := w.pos
		if _, ok := w.str(); !ok {
			return false
		}
		if w.target > start && w.target < w.pos {
			w.found, w.path = true, path
			return false
		}
		return true
	default:
		start := w.pos
		for w.pos < len(w.data) && strings.IndexByte(",]} \t\r\n", w.data[w.pos]) < 0 {
			w.pos++
		}
		if w.target > start && w.target < w.pos {
			w.found, w.path = true, path
			return false
		}
		return w.pos > start
	}
}

func (w *walker) str() (string, bool) {
	if w.pos >= len(w.data) || w.data[w.pos] != '"' {
		return "", false
	}
	i := w.pos + 1
	for i < len(w.data) {
		switch w.data[i] {
		case '\\':
			i += 2
			continue
		case '"':
			raw := w.data[w.pos+1 : i]
			w.pos = i + 1
			return string(unescapeInto(nil, raw)), true
		}
		i++
	}
	return "", false
}

// escapePointer escapes a reference token per RFC 6901.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
