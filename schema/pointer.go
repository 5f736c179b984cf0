package schema

import (
	"strconv"
	"strings"
)

// pointerAt returns the JSON Pointer of the value or key that starts at
// byte offset off (or contains it). It runs only to report an error; it
// keeps the path as offsets and builds the pointer string once.
func pointerAt(data []byte, off int) string {
	w := walker{data: data, target: off, path: make([]segment, 0, 16)}
	w.ws()
	complete := w.value()
	switch {
	case w.found:
	case complete:
		w.path = nil // past the end of a well-formed value: the document itself
	default:
		w.path = w.best
	}
	var b strings.Builder
	for _, s := range w.path {
		b.WriteByte('/')
		if s.index >= 0 {
			b.WriteString(strconv.Itoa(s.index))
			continue
		}
		b.WriteString(escapePointer(string(unescapeInto(nil, data[s.start:s.end]))))
	}
	return b.String()
}

// segment is a key (offsets of its raw content) or an array index.
type segment struct {
	start, end int
	index      int // -1 for a key
}

type walker struct {
	data   []byte
	pos    int
	target int
	found  bool
	path   []segment
	best   []segment // deepest container entered before the target
}

func (w *walker) ws() {
	for w.pos < len(w.data) && strings.IndexByte(" \t\r\n", w.data[w.pos]) >= 0 {
		w.pos++
	}
}

func (w *walker) stop() bool {
	w.found = true
	return false
}

func (w *walker) enter() {
	w.best = append(w.best[:0], w.path...)
}

// leave makes the enclosing container the deepest open one again.
func (w *walker) leave() {
	if n := len(w.path); n > 0 {
		w.best = append(w.best[:0], w.path[:n-1]...)
	} else {
		w.best = w.best[:0]
	}
}

// value walks one value; it returns false to stop the walk.
func (w *walker) value() bool {
	if w.pos >= w.target {
		return w.stop()
	}
	if w.pos >= len(w.data) {
		return false
	}
	switch w.data[w.pos] {
	case '{':
		w.enter()
		w.pos++
		for {
			w.ws()
			if w.pos >= len(w.data) {
				return false
			}
			if w.data[w.pos] == '}' {
				w.pos++
				w.leave()
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				continue
			}
			keyStart := w.pos
			if !w.str() {
				return false
			}
			w.path = append(w.path, segment{start: keyStart + 1, end: w.pos - 1, index: -1})
			if w.target >= keyStart && w.target < w.pos {
				return w.stop()
			}
			w.ws()
			if w.pos < len(w.data) && w.data[w.pos] == ':' {
				w.pos++
			}
			w.ws()
			if !w.value() {
				return false
			}
			w.path = w.path[:len(w.path)-1]
		}
	case '[':
		w.enter()
		w.pos++
		for i := 0; ; {
			w.ws()
			if w.pos >= len(w.data) {
				return false
			}
			if w.data[w.pos] == ']' {
				w.pos++
				w.leave()
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				i++
				continue
			}
			w.path = append(w.path, segment{index: i})
			if !w.value() {
				return false
			}
			w.path = w.path[:len(w.path)-1]
		}
	case '"':
		if !w.str() {
			return false
		}
	default:
		start := w.pos
		for w.pos < len(w.data) && strings.IndexByte(",]} \t\r\n", w.data[w.pos]) < 0 {
			w.pos++
		}
		if w.pos == start {
			return false
		}
	}
	if w.target < w.pos {
		return w.stop()
	}
	return true
}

func (w *walker) str() bool {
	if w.pos >= len(w.data) || w.data[w.pos] != '"' {
		return false
	}
	for i := w.pos + 1; i < len(w.data); i++ {
		switch w.data[i] {
		case '\\':
			i++
		case '"':
			w.pos = i + 1
			return true
		}
	}
	return false
}

// escapePointer escapes a reference token per RFC 6901.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
