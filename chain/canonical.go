package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotCanonicalizable is wrapped by every error of [Canonical]: the input
// is not JSON, or is JSON that RFC 8785 cannot canonicalize (duplicate
// member names, invalid UTF-8, lone surrogates, numbers out of the range of
// IEEE 754 double precision).
var ErrNotCanonicalizable = errors.New("chain: not canonicalizable JSON")

// maxDepth bounds the nesting of objects and arrays Canonical accepts.
const maxDepth = 512

// Canonical appends to dst the RFC 8785 (JSON Canonicalization Scheme)
// form of the JSON text src and returns the extended buffer: no
// insignificant whitespace; object members sorted by the UTF-16 code units
// of their names; strings in JCS escaping (only '"', '\' and control
// characters escaped, '\u00XX' in lower case for the controls without a
// short form); numbers as ECMAScript's Number.prototype.toString writes
// them (so 1.0, 1E0 and 10e-1 are all "1", and integers up to 2^53 are
// plain digits).
//
// Canonical streams over src without building a tree; it allocates only
// when an object's members need reordering (a scratch buffer it then keeps
// no reference to) or a number is not a plain integer of at most 15
// digits. On error it returns dst as it was and an error wrapping
// [ErrNotCanonicalizable] with the byte offset. It does not retain src.
func Canonical(dst, src []byte) ([]byte, error) {
	c := pool.Get().(*canonicalizer)
	out, err := c.canonical(dst, src, false, nil)
	pool.Put(c)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// pool keeps canonicalizers, whose member stacks and scratch buffers are
// reused across calls of Canonical.
var pool = sync.Pool{New: func() any { return new(canonicalizer) }}

// Paths the canonicalizer tracks to exclude or capture members of the
// integrity link.
const (
	pathOther = iota
	pathRoot
	pathMetadata
	pathUnmapped
	pathLink
)

// member is one object member written to c.dst: the name between its
// quotes is dst[key0:key1]; the member (name, colon and value) is
// dst[start:end]. When ascii (the name is printable ASCII without
// escapes), prefix holds its first 8 bytes, big endian, zero-padded, and
// orders it against another such name unless they share those bytes.
type member struct {
	prefix                 uint64
	key0, key1, start, end int32
	ascii                  bool
}

// canonicalizer holds the state of one canonicalization; its buffers are
// reused by the next one.
type canonicalizer struct {
	src     []byte
	pos     int
	dst     []byte
	depth   int
	members []member // stack of the members of the open objects
	tmp     []byte   // scratch for reordering members
	exclude bool     // drop unmapped.sandtrail_integrity.{hash,sig}
	cap     *captured
}

// canonical runs one canonicalization. With exclude it drops the members
// hash and sig of unmapped.sandtrail_integrity; with cap it records the
// values the verifier needs.
func (c *canonicalizer) canonical(dst, src []byte, exclude bool, cap *captured) (out []byte, err error) {
	c.src, c.pos, c.dst, c.depth = src, 0, dst, 0
	c.members = c.members[:0]
	c.exclude, c.cap = exclude, cap
	defer func() { c.src, c.dst = nil, nil }()
	c.skipWS()
	if err := c.value(pathRoot); err != nil {
		return nil, err
	}
	c.skipWS()
	if c.pos != len(c.src) {
		return nil, c.errorf("data after the JSON value")
	}
	return c.dst, nil
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrNotCanonicalizable, c.pos, fmt.Sprintf(format, args...))
}

func (c *canonicalizer) skipWS() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(path int) error {
	if c.pos >= len(c.src) {
		return c.errorf("unexpected end of input")
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		return c.object(path)
	case ch == '[':
		return c.array()
	case ch == '"':
		_, err := c.str()
		return err
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number()
	default:
		return c.errorf("unexpected character %q", ch)
	}
}

func (c *canonicalizer) literal(lit string) error {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
		return c.errorf("invalid literal")
	}
	c.pos += len(lit)
	c.dst = append(c.dst, lit...)
	return nil
}

func (c *canonicalizer) array() error {
	if c.depth++; c.depth > maxDepth {
		return c.errorf("nesting deeper than %d", maxDepth)
	}
	c.pos++
	c.dst = append(c.dst, '[')
	c.skipWS()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		c.dst = append(c.dst, ']')
		c.depth--
		return nil
	}
	for {
		c.skipWS()
		if err := c.value(pathOther); err != nil {
			return err
		}
		c.skipWS()
		if c.pos >= len(c.src) {
			return c.errorf("unterminated array")
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.dst = append(c.dst, ',')
		case ']':
			c.pos++
			c.dst = append(c.dst, ']')
			c.depth--
			return nil
		default:
			return c.errorf("expected ',' or ']' in array")
		}
	}
}

// childPath is the path of the value of member key in an object at path.
func childPath(path int, key []byte) int {
	switch path {
	case pathRoot:
		switch string(key) {
		case "metadata":
			return pathMetadata
		case "unmapped":
			return pathUnmapped
		}
	case pathUnmapped:
		if string(key) == LinkMember {
			return pathLink
		}
	}
	return pathOther
}

func (c *canonicalizer) object(path int) error {
	if c.depth++; c.depth > maxDepth {
		return c.errorf("nesting deeper than %d", maxDepth)
	}
	track := c.exclude || c.cap != nil
	if c.cap != nil {
		c.cap.sawObject(path)
	}
	c.pos++
	c.dst = append(c.dst, '{')
	open := len(c.dst)
	base := len(c.members)
	var excluded uint8 // bit 0: hash dropped, bit 1: sig dropped
	c.skipWS()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		c.dst = append(c.dst, '}')
		c.depth--
		return nil
	}
	for {
		c.skipWS()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return c.errorf("expected a member name")
		}
		comma := len(c.dst)
		if len(c.members) > base {
			c.dst = append(c.dst, ',')
		}
		start := len(c.dst)
		flags, err := c.str()
		if err != nil {
			return err
		}
		key0, key1 := start+1, len(c.dst)-1
		if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
			c.skipWS()
		}
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return c.errorf("expected ':' after a member name")
		}
		c.pos++
		c.dst = append(c.dst, ':')
		if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
			c.skipWS()
		}
		child := pathOther
		if track && path != pathOther {
			child = childPath(path, c.dst[key0:key1])
		}
		vstart := len(c.dst)
		if err := c.value(child); err != nil {
			return err
		}
		keep := true
		if track && (path == pathMetadata || path == pathLink) {
			key := c.dst[key0:key1]
			if c.cap != nil {
				c.cap.record(path, key, c.dst[vstart:])
			}
			if c.exclude && path == pathLink {
				bit := uint8(0)
				switch string(key) {
				case "hash":
					bit = 1
				case "sig":
					bit = 2
				}
				if bit != 0 {
					if excluded&bit != 0 {
						return c.errorf("duplicate member name %q", key)
					}
					excluded |= bit
					keep = false
					c.dst = c.dst[:comma]
				}
			}
		}
		if keep {
			m := member{key0: int32(key0), key1: int32(key1), start: int32(start), end: int32(len(c.dst)), ascii: flags == 0}
			if m.ascii {
				m.prefix = keyPrefix(c.dst[key0:key1])
			}
			c.members = append(c.members, m)
		}
		c.skipWS()
		if c.pos >= len(c.src) {
			return c.errorf("unterminated object")
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			continue
		case '}':
			c.pos++
		default:
			return c.errorf("expected ',' or '}' in object")
		}
		break
	}
	if err := c.sortMembers(open, base); err != nil {
		return err
	}
	c.members = c.members[:base]
	c.dst = append(c.dst, '}')
	c.depth--
	return nil
}

// sortMembers puts the members of the object whose content starts at
// dst[open] in canonical order, and rejects duplicate names.
func (c *canonicalizer) sortMembers(open, base int) error {
	ms := c.members[base:]
	// Insertion sort: objects are small, often nearly sorted, and this
	// allocates nothing. Equal names end up compared, so duplicates are
	// found.
	moved := false
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		j := i
		for ; j > 0; j-- {
			r := c.compare(&ms[j-1], &m)
			if r == 0 {
				return c.errorf("duplicate member name %q", c.dst[m.key0:m.key1])
			}
			if r < 0 {
				break
			}
			ms[j] = ms[j-1]
		}
		if j != i {
			ms[j], moved = m, true
		}
	}
	if !moved {
		return nil
	}
	c.tmp = append(c.tmp[:0], c.dst[open:]...)
	c.dst = c.dst[:open]
	for i, m := range ms {
		if i > 0 {
			c.dst = append(c.dst, ',')
		}
		c.dst = append(c.dst, c.tmp[int(m.start)-open:int(m.end)-open]...)
	}
	return nil
}

func (c *canonicalizer) compare(a, b *member) int {
	if a.ascii && b.ascii {
		switch {
		case a.prefix < b.prefix:
			return -1
		case a.prefix > b.prefix:
			return 1
		}
		// ASCII: byte order is UTF-16 order.
		return bytes.Compare(c.dst[a.key0:a.key1], c.dst[b.key0:b.key1])
	}
	return compareKeys(c.dst[a.key0:a.key1], c.dst[b.key0:b.key1])
}

// keyPrefix returns the first 8 bytes of k, big endian, zero-padded.
func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var v uint64
	for i := range 8 {
		v <<= 8
		if i < len(k) {
			v |= uint64(k[i])
		}
	}
	return v
}

// compareKeys compares two member names in canonical escaping by their
// UTF-16 code units, as RFC 8785 section 3.2.3 asks.
func compareKeys(a, b []byte) int {
	if bytes.IndexByte(a, '\\') >= 0 || bytes.IndexByte(b, '\\') >= 0 {
		return compareUTF16(unescapeCanonical(a), unescapeCanonical(b))
	}
	return compareUTF16(a, b)
}

// compareUTF16 compares two valid UTF-8 strings by their UTF-16 code
// units. UTF-8 byte order is code point order, which differs from UTF-16
// order only between supplementary characters (4-byte sequences, UTF-16
// surrogates D800-DBFF) and U+E000-U+FFFF (lead bytes EE and EF).
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		switch {
		case len(a) < len(b):
			return -1
		case len(a) > len(b):
			return 1
		}
		return 0
	}
	x, y := a[i], b[i]
	if x >= 0xEE && y >= 0xEE && (x >= 0xF0) != (y >= 0xF0) {
		// A lead byte of U+E000-U+FFFF against one of a supplementary
		// character: the surrogate pair sorts first.
		if x >= 0xF0 {
			return -1
		}
		return 1
	}
	if x < y {
		return -1
	}
	return 1
}

// unescapeCanonical decodes a string body in canonical escaping.
func unescapeCanonical(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '\\' || i+1 >= len(s) {
			out = append(out, ch)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 < len(s) {
				v, _ := strconv.ParseUint(string(s[i+1:i+5]), 16, 8)
				out = append(out, byte(v))
				i += 4
			}
		default: // '"' and '\\'
			out = append(out, s[i])
		}
	}
	return out
}

// plain marks the bytes a canonical string holds as they are: printable
// ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for i := 0x20; i < 0x80; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

// Flags of str.
const (
	strEscaped  = 1 << iota // the canonical string holds an escape
	strNonASCII             // it holds a non-ASCII character
)

// str copies the JSON string at c.pos to dst in canonical escaping, and
// returns flags saying what it holds.
func (c *canonicalizer) str() (flags uint8, err error) {
	src, dst := c.src, c.dst // locals: the loop keeps them in registers
	p := c.pos + 1           // after the opening quote
	dst = append(dst, '"')
	for {
		// Fast path: a run of bytes that need no change, 8 at a time.
		start := p
		for p+8 <= len(src) && special(binary.LittleEndian.Uint64(src[p:])) == 0 {
			p += 8
		}
		for p < len(src) && plain[src[p]] {
			p++
		}
		dst = append(dst, src[start:p]...)
		if p >= len(src) {
			c.pos, c.dst = p, dst
			return 0, c.errorf("unterminated string")
		}
		switch ch := src[p]; {
		case ch == '"':
			c.pos, c.dst = p+1, append(dst, '"')
			return flags, nil
		case ch < 0x20:
			c.pos, c.dst = p, dst
			return 0, c.errorf("control character in a string")
		case ch >= 0x80:
			r, size := utf8.DecodeRune(src[p:])
			if r == utf8.RuneError && size <= 1 {
				c.pos, c.dst = p, dst
				return 0, c.errorf("invalid UTF-8 in a string")
			}
			dst = append(dst, src[p:p+size]...)
			p += size
			flags |= strNonASCII
		default: // '\\'
			c.pos, c.dst = p, dst
			n := len(dst)
			if err := c.escape(); err != nil {
				return 0, err
			}
			dst = c.dst
			if dst[n] == '\\' {
				flags |= strEscaped
			} else if dst[n] >= 0x80 {
				flags |= strNonASCII
			}
			p = c.pos
		}
	}
}

// special is non-zero when one of the 8 bytes in x (little endian) is not
// plain: below 0x20, '"', '\\' or 0x80 and above. It may flag a plain byte
// next to one that is not, never miss one.
func special(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	b := x ^ (lo * '\\')
	return (x | (x-lo*0x20)&^x | (q-lo)&^q | (b-lo)&^b) & hi
}

// escape decodes the escape sequence at c.pos and writes the character in
// canonical escaping.
func (c *canonicalizer) escape() error {
	if c.pos+1 >= len(c.src) {
		return c.errorf("unterminated escape")
	}
	e := c.src[c.pos+1]
	c.pos += 2
	var r rune
	switch e {
	case '"', '\\', '/':
		r = rune(e)
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		u, ok := hex4(c.src[c.pos:])
		if !ok {
			return c.errorf("invalid \\u escape")
		}
		c.pos += 4
		r = rune(u)
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			lo, ok := uint16(0), false
			if c.pos+1 < len(c.src) && c.src[c.pos] == '\\' && c.src[c.pos+1] == 'u' {
				lo, ok = hex4(c.src[c.pos+2:])
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return c.errorf("lone high surrogate in a \\u escape")
			}
			c.pos += 6
			r = utf16.DecodeRune(r, rune(lo))
		case utf16.IsSurrogate(r):
			return c.errorf("lone low surrogate in a \\u escape")
		}
	default:
		return c.errorf("invalid escape \\%c", e)
	}
	c.dst = appendStringRune(c.dst, r)
	return nil
}

func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, ch := range b[:4] {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, true
}

const lowerHex = "0123456789abcdef"

// appendStringRune appends r as it appears inside a canonical string.
func appendStringRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', lowerHex[r>>4], lowerHex[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// appendString appends s (valid UTF-8) as a canonical JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		dst = appendStringRune(dst, r)
	}
	return append(dst, '"')
}

// number copies the JSON number at c.pos to dst in ECMAScript form.
func (c *canonicalizer) number() error {
	start := c.pos
	p := c.pos
	if c.src[p] == '-' {
		p++
	}
	digits := p
	switch {
	case p < len(c.src) && c.src[p] == '0':
		p++
	case p < len(c.src) && '1' <= c.src[p] && c.src[p] <= '9':
		for p < len(c.src) && '0' <= c.src[p] && c.src[p] <= '9' {
			p++
		}
	default:
		c.pos = p
		return c.errorf("invalid number")
	}
	intEnd := p
	plain := true
	if p < len(c.src) && c.src[p] == '.' {
		plain = false
		p++
		if p >= len(c.src) || c.src[p] < '0' || c.src[p] > '9' {
			c.pos = p
			return c.errorf("invalid number: no digit after '.'")
		}
		for p < len(c.src) && '0' <= c.src[p] && c.src[p] <= '9' {
			p++
		}
	}
	if p < len(c.src) && (c.src[p] == 'e' || c.src[p] == 'E') {
		plain = false
		p++
		if p < len(c.src) && (c.src[p] == '+' || c.src[p] == '-') {
			p++
		}
		if p >= len(c.src) || c.src[p] < '0' || c.src[p] > '9' {
			c.pos = p
			return c.errorf("invalid number: no digit in the exponent")
		}
		for p < len(c.src) && '0' <= c.src[p] && c.src[p] <= '9' {
			p++
		}
	}
	c.pos = p
	lit := c.src[start:p]
	if plain && intEnd-digits <= 15 {
		// Exactly representable, and written the way ECMAScript would.
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			lit = lit[1:]
		}
		c.dst = append(c.dst, lit...)
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return c.errorf("number %s out of the range of IEEE 754 double precision", lit)
	}
	c.dst = appendES6Number(c.dst, f)
	return nil
}
