package schema

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// Lexical scanning for the validator. Every function works on s.data at
// s.pos and reports problems through s.fail.

// plain[c] is true for bytes that need no attention inside a string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *state) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *state) literal(lit string) bool {
	if len(s.data)-s.pos >= len(lit) && str(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// stringToken scans a string at s.pos and returns the bounds of its content
// (between the quotes) and whether it contains escapes.
func (s *state) stringToken() (start, end int, esc, ok bool) {
	d := s.data
	if s.pos >= len(d) || d[s.pos] != '"' {
		return 0, 0, false, s.typeError("string")
	}
	i := s.pos + 1
	start = i
	for i < len(d) {
		c := d[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return start, i, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				return 0, 0, false, s.fail(s.pos, "", KindSyntax, "unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
				if i+5 < len(d) && isHex(d[i+2]) && isHex(d[i+3]) && isHex(d[i+4]) && isHex(d[i+5]) {
					i += 6
					continue
				}
			}
			return 0, 0, false, s.fail(i, "", KindSyntax, "invalid escape in a string")
		case c < 0x20:
			return 0, 0, false, s.fail(i, "", KindSyntax, "control character 0x%02x in a string", c)
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, 0, false, s.fail(s.pos, "", KindSemantic, "string is not valid UTF-8")
			}
			i += size
		}
	}
	return 0, 0, false, s.fail(s.pos, "", KindSyntax, "unterminated string")
}

func isHex(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// number scans a JSON number at s.pos; isInt is false when it has a
// fraction or an exponent.
func (s *state) number() (start int, isInt, ok bool) {
	d := s.data
	start = s.pos
	i := s.pos
	isInt = true
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && isDigit(d[i]):
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return start, false, s.fail(start, "", KindSyntax, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		isInt = false
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return start, false, s.fail(start, "", KindSyntax, "invalid number")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		isInt = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return start, false, s.fail(start, "", KindSyntax, "invalid number")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	s.pos = i
	return start, isInt, true
}

// integer scans an integer value of attribute a and checks its range and,
// for an enum, its membership.
func (s *state) integer(a *attrRule) (int64, bool) {
	off := s.pos
	if s.pos >= len(s.data) || !(s.data[s.pos] == '-' || isDigit(s.data[s.pos])) {
		return 0, s.typeError("integer")
	}
	_, isInt, ok := s.number()
	if !ok {
		return 0, false
	}
	tok := s.data[off:s.pos]
	if !isInt {
		f, err := strconv.ParseFloat(str(tok), 64)
		if err == nil && f == math.Trunc(f) {
			return 0, s.fail(off, "", KindSemantic, "%s must be written as an integer, without fraction or exponent: %s", a.name, string(tok))
		}
		return 0, s.fail(off, "", KindSchema, "%s must be an integer, found %s", a.name, string(tok))
	}
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	var u uint64
	for _, c := range tok {
		if u > (math.MaxUint64-9)/10 {
			return 0, s.outOfRange(a, off)
		}
		u = u*10 + uint64(c-'0')
	}
	if (!neg && u > math.MaxInt64) || (neg && u > 1<<63) {
		return 0, s.outOfRange(a, off)
	}
	v := int64(u)
	if neg {
		v = -v
	}
	if a.kind == kindInt && (v < math.MinInt32 || v > math.MaxInt32) {
		return 0, s.fail(off, "", KindSchema, "%s %d is outside the 32-bit integer range", a.name, v)
	}
	if a.format == fmtPort && (v < 0 || v > 65535) {
		return 0, s.fail(off, "", KindSchema, "port %d is outside 0-65535", v)
	}
	if a.enum >= 0 {
		e := &enumRules[a.enum]
		if _, ok := e.caption(v); !ok {
			return 0, s.fail(off, "", KindSchema, "%d is not a valid %s (%s)", v, a.name, enumMembers(e))
		}
	}
	return v, true
}

func (s *state) outOfRange(a *attrRule, off int) bool {
	if a.kind == kindInt {
		return s.fail(off, "", KindSchema, "%s is outside the 32-bit integer range", a.name)
	}
	return s.fail(off, "", KindSemantic, "%s is outside the 64-bit integer range", a.name)
}

// anyValue validates any JSON value (free-form objects, json_t): grammar,
// UTF-8, depth, and no duplicate keys.
func (s *state) anyValue(top bool) bool {
	if s.pos >= len(s.data) {
		return s.syntax("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.anyObject()
	case c == '[':
		s.depth++
		if s.depth > s.maxDepth {
			return s.fail(s.pos, "", KindSemantic, "nesting deeper than %d", s.maxDepth)
		}
		s.pos++
		s.ws()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			s.depth--
			return true
		}
		for {
			s.ws()
			if !s.anyValue(false) {
				return false
			}
			s.ws()
			if s.pos >= len(s.data) {
				return s.syntax("unexpected end of input in an array")
			}
			if s.data[s.pos] == ',' {
				s.pos++
				continue
			}
			if s.data[s.pos] == ']' {
				s.pos++
				s.depth--
				return true
			}
			return s.syntax("expected ',' or ']' in an array")
		}
	case c == '"':
		_, _, _, ok := s.stringToken()
		return ok
	case c == '-' || isDigit(c):
		_, _, ok := s.number()
		return ok
	case s.literal("true"), s.literal("false"), s.literal("null"):
		return true
	}
	return s.syntax("invalid JSON value")
}

func (s *state) anyObject() bool {
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail(s.pos, "", KindSemantic, "nesting deeper than %d", s.maxDepth)
	}
	s.pos++
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return true
	}
	var keys [32][2]int32
	n := 0
	var many map[string]struct{}
	for {
		s.ws()
		keyOff := s.pos
		k0, k1, esc, ok := s.stringToken()
		if !ok {
			return false
		}
		key := s.data[k0:k1]
		if esc {
			key = unescapeInto(nil, key)
		}
		dup := false
		if many != nil {
			_, dup = many[string(key)]
			many[string(key)] = struct{}{}
		} else {
			for i := 0; i < n; i++ {
				prev := s.data[keys[i][0]:keys[i][1]]
				if bytes.IndexByte(prev, '\\') >= 0 {
					prev = unescapeInto(nil, prev)
				}
				if bytes.Equal(prev, key) {
					dup = true
					break
				}
			}
			if n < len(keys) {
				keys[n] = [2]int32{int32(k0), int32(k1)}
				n++
			} else {
				many = make(map[string]struct{}, 2*len(keys))
				for i := 0; i < n; i++ {
					many[string(unescapeInto(nil, s.data[keys[i][0]:keys[i][1]]))] = struct{}{}
				}
				many[string(key)] = struct{}{}
			}
		}
		if dup {
			return s.fail(keyOff, "", KindSemantic, "duplicate key %q", string(key))
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.syntax("expected ':' after a key")
		}
		s.pos++
		s.ws()
		if !s.anyValue(false) {
			return false
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.syntax("unexpected end of input in an object")
		}
		if s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.data[s.pos] == '}' {
			s.pos++
			s.depth--
			return true
		}
		return s.syntax("expected ',' or '}' in an object")
	}
}

// findClassUID scans the top level of an object for class_uid without
// validating the values it skips. It returns the uid and the offset of its
// value; off is -1 when data is not an object. The emitter writes class_uid
// first, so for sandtrail's own events this stops at the first key.
func findClassUID(data []byte) (uid int64, off int, ok bool) {
	s := state{data: data, maxDepth: math.MaxInt32}
	return s.findClassUID()
}

// findClassUID is findClassUID on s; a malformed class_uid value leaves its
// failure in s.
func (s *state) findClassUID() (uid int64, off int, ok bool) {
	data := s.data
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return 0, -1, false
	}
	s.pos++
	for {
		s.ws()
		k0, k1, esc, ok := s.stringToken()
		if !ok {
			return 0, 0, false
		}
		s.ws()
		if s.pos >= len(data) || data[s.pos] != ':' {
			return 0, 0, false
		}
		s.pos++
		s.ws()
		key := data[k0:k1]
		var buf [16]byte
		if esc && len(key) < 64 {
			key = unescapeInto(buf[:0], key)
		}
		if str(key) == "class_uid" {
			off = s.pos
			v, ok := s.integer(&attrRule{name: "class_uid", kind: kindInt, enum: -1})
			return v, off, ok
		}
		if !s.skip() {
			return 0, 0, false
		}
		s.ws()
		if s.pos >= len(data) || data[s.pos] != ',' {
			return 0, 0, false
		}
		s.pos++
	}
}

// skip passes over one value, checking only bracket balance and strings.
func (s *state) skip() bool {
	d := s.data
	depth := 0
	for s.pos < len(d) {
		switch c := d[s.pos]; c {
		case '"':
			i := s.pos + 1
			for {
				j := bytes.IndexByte(d[i:], '"')
				if j < 0 {
					return false
				}
				i += j
				bs := 0
				for k := i - 1; k > s.pos && d[k] == '\\'; k-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
				i++
			}
			s.pos = i + 1
		case '{', '[':
			depth++
			s.pos++
			continue
		case '}', ']':
			depth--
			if depth < 0 {
				return false
			}
			s.pos++
		case ',':
			if depth == 0 {
				return true
			}
			s.pos++
			continue
		default:
			s.pos++
			if depth == 0 && (s.pos >= len(d) || d[s.pos] == ',' || d[s.pos] == '}' || d[s.pos] == ' ' || d[s.pos] == '\n' || d[s.pos] == '\t' || d[s.pos] == '\r') {
				return true
			}
			continue
		}
		if depth == 0 {
			return true
		}
	}
	return false
}

// unescapeInto appends the decoded content of a JSON string to buf. The
// content was already checked by stringToken.
func unescapeInto(buf, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			buf = append(buf, c)
			continue
		}
		i++
		if i >= len(raw) {
			break
		}
		switch raw[i] {
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if i+4 >= len(raw) {
				buf = append(buf, raw[i-1:]...)
				return buf
			}
			r := rune(hexVal(raw[i+1 : i+5]))
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' && isHex(raw[i+3]) && isHex(raw[i+4]) && isHex(raw[i+5]) && isHex(raw[i+6]) {
				r2 := rune(hexVal(raw[i+3 : i+7]))
				if r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			buf = append(buf, raw[i])
		}
	}
	return buf
}

func hexVal(h []byte) int {
	v := 0
	for _, c := range h {
		v <<= 4
		switch {
		case isDigit(c):
			v |= int(c - '0')
		default:
			v |= int(c|0x20-'a') + 10
		}
	}
	return v
}

// stringEquals compares the raw content of a JSON string with want.
func stringEquals(raw []byte, want string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return str(raw) == want
	}
	var buf [128]byte
	return str(unescapeInto(buf[:0], raw)) == want
}

func runeCount(b []byte) int { return utf8.RuneCount(b) }
