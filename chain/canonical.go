package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
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

// member is one object member of the output. The member (name, colon and
// value) is the output's bytes [start, end). The name between its quotes
// is src[key0:key1] when inSrc (the source spells it canonically), else
// dst[key0:key1]. When ascii (the name is printable ASCII without
// escapes), prefix holds its first 8 bytes, big endian, zero-padded, and
// orders it against another such name unless they share those bytes.
type member struct {
	prefix                 uint64
	key0, key1, start, end int32
	ascii, inSrc           bool
}

// canonicalizer holds the state of one canonicalization; its buffers are
// reused by the next one.
//
// Most of a canonical form is its source verbatim: compact JSON differs
// only in member order, escapes and some numbers. So the output is dst
// followed by src[pend:pos], bytes read that are output as they are but
// not copied yet; they are copied (flush) only when the output departs
// from the source: whitespace to drop, an escape or number to rewrite,
// members to reorder or exclude. Offsets in the output ("output offsets")
// count both parts.
type canonicalizer struct {
	src     []byte
	pos     int
	pend    int // src[pend:pos] is output not yet copied to dst
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
	c.src, c.pos, c.pend, c.dst, c.depth = src, 0, 0, dst, 0
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
	c.flush()
	return c.dst, nil
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrNotCanonicalizable, c.pos, fmt.Sprintf(format, args...))
}

// flush copies the pending output, src[pend:pos], to dst.
func (c *canonicalizer) flush() {
	c.dst = append(c.dst, c.src[c.pend:c.pos]...)
	c.pend = c.pos
}

// outLen returns the length of the output so far, pending bytes included.
func (c *canonicalizer) outLen() int { return len(c.dst) + c.pos - c.pend }

// output returns the output from output offset start on. It flushes only
// when that output is partly in dst.
func (c *canonicalizer) output(start int) []byte {
	if n := start - len(c.dst); n >= 0 {
		return c.src[c.pend+n : c.pos]
	}
	c.flush()
	return c.dst[start:]
}

// truncate drops the output from output offset n on.
func (c *canonicalizer) truncate(n int) {
	if k := n - len(c.dst); k > 0 {
		c.dst = append(c.dst, c.src[c.pend:c.pend+k]...)
	} else {
		c.dst = c.dst[:n]
	}
	c.pend = c.pos
}

// skipWS skips whitespace, which is not output.
func (c *canonicalizer) skipWS() {
	if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
		c.skipWSSlow()
	}
}

func (c *canonicalizer) skipWSSlow() {
	c.flush()
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			c.pend = c.pos
			return
		}
	}
	c.pend = c.pos
}

func (c *canonicalizer) value(path int) error {
	if c.pos >= len(c.src) {
		return c.errorf("unexpected end of input")
	}
	switch ch := c.src[c.pos]; {
	case ch == '"':
		_, err := c.str()
		return err
	case ch == '{':
		return c.object(path)
	case ch == '[':
		return c.array()
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

// literal reads true, false or null, output as it is.
func (c *canonicalizer) literal(lit string) error {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
		return c.errorf("invalid literal")
	}
	c.pos += len(lit)
	return nil
}

// array reads an array; its brackets and commas are output as they are.
func (c *canonicalizer) array() error {
	if c.depth++; c.depth > maxDepth {
		return c.errorf("nesting deeper than %d", maxDepth)
	}
	c.pos++ // '['
	c.skipWS()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
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
		case ']':
			c.pos++
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

// name returns a member name in canonical form: src[key0:key1] when
// inSrc, else dst[key0:key1]. Its capacity ends with the buffer's length,
// so keyPrefix may read past it without reaching bytes that are not the
// canonicalizer's.
func (c *canonicalizer) name(key0, key1 int, inSrc bool) []byte {
	if inSrc {
		return c.src[key0:key1:len(c.src)]
	}
	return c.dst[key0:key1:len(c.dst)]
}

// key returns the name of m in canonical form.
func (c *canonicalizer) key(m *member) []byte {
	return c.name(int(m.key0), int(m.key1), m.inSrc)
}

func (c *canonicalizer) object(path int) error {
	if c.depth++; c.depth > maxDepth {
		return c.errorf("nesting deeper than %d", maxDepth)
	}
	track := c.exclude || c.cap != nil
	if c.cap != nil {
		c.cap.sawObject(path)
	}
	c.pos++ // '{'
	open := c.outLen()
	base := len(c.members)
	var excluded uint8 // bit 0: hash dropped, bit 1: sig dropped
	sorted := true     // the members so far are in canonical order
	c.skipWS()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		c.depth--
		return nil
	}
	comma := open // where the next member's output, with its comma, starts
	for {
		c.skipWS()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return c.errorf("expected a member name")
		}
		start := c.outLen()
		quote := c.pos
		flags, err := c.str()
		if err != nil {
			return err
		}
		// The name is the source's unless part of it was rewritten.
		key0, key1, inSrc := quote+1, c.pos-1, true
		if c.pend > quote {
			c.flush()
			key0, key1, inSrc = start+1, len(c.dst)-1, false
		}
		if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
			c.skipWS()
		}
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return c.errorf("expected ':' after a member name")
		}
		c.pos++
		if c.pos < len(c.src) && c.src[c.pos] <= ' ' {
			c.skipWS()
		}
		child := pathOther
		if track && path != pathOther {
			child = childPath(path, c.name(key0, key1, inSrc))
		}
		vstart := c.outLen()
		if err := c.value(child); err != nil {
			return err
		}
		keep := true
		if track && (path == pathMetadata || path == pathLink) {
			// The members of metadata and of the link are captured or
			// excluded.
			key := c.name(key0, key1, inSrc)
			if c.cap != nil {
				c.cap.record(path, key, c.output(vstart))
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
					c.truncate(comma)
				}
			}
		}
		if keep {
			var prefix uint64
			if flags == 0 {
				prefix = keyPrefix(c.name(key0, key1, inSrc))
			}
			// Built at once: filling a member field by field, then
			// copying it, stalls on store forwarding.
			m := member{prefix, int32(key0), int32(key1), int32(start), int32(c.outLen()), flags == 0, inSrc}
			if sorted && len(c.members) > base {
				// Still in order after the previous member? Equal names
				// are left to sortMembers, which reports them.
				p := &c.members[len(c.members)-1]
				if !(p.ascii && m.ascii && p.prefix < m.prefix) && c.compare(p, &m) >= 0 {
					sorted = false
				}
			}
			c.members = append(c.members, m)
		}
		c.skipWS()
		if c.pos >= len(c.src) {
			return c.errorf("unterminated object")
		}
		switch c.src[c.pos] {
		case ',':
			comma = c.outLen()
			if len(c.members) == base {
				// Every member so far was excluded: drop the comma.
				c.flush()
				c.pend = c.pos + 1
			}
			c.pos++
			continue
		case '}':
		default:
			return c.errorf("expected ',' or '}' in object")
		}
		break
	}
	c.pos++ // '}'
	if !sorted {
		if err := c.sortMembers(open, base); err != nil {
			return err
		}
	}
	c.members = c.members[:base]
	c.depth--
	return nil
}

// sortMembers puts the members of the object whose output starts at
// output offset open in canonical order, and rejects duplicate names. It
// is called with c.pos after the object's closing brace.
func (c *canonicalizer) sortMembers(open, base int) error {
	ms := c.members[base:]
	// Binary insertion sort: objects are small, often sorted or nearly
	// so (a member after the previous costs one comparison), and this
	// allocates nothing. A name equal to one already placed is compared
	// with it (the search ends on the first name not below it, having
	// compared it), so duplicates are found.
	moved := false
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		r := c.compare(&ms[i-1], &m)
		if r < 0 {
			continue
		}
		if r == 0 {
			return c.errorf("duplicate member name %q", c.key(&m))
		}
		// m goes before ms[i-1]: find the first of ms[:i-1] above it.
		lo, hi := 0, i-1
		for lo < hi {
			h := int(uint(lo+hi) >> 1)
			switch r := c.compare(&ms[h], &m); {
			case r == 0:
				return c.errorf("duplicate member name %q", c.key(&m))
			case r < 0:
				lo = h + 1
			default:
				hi = h
			}
		}
		copy(ms[lo+1:i+1], ms[lo:i])
		ms[lo], moved = m, true
	}
	if !moved {
		return nil
	}
	// Rewrite the object's output in order: its part in dst from a copy
	// in tmp, its pending part straight from src. Either way each byte
	// is copied once here, whatever the nesting.
	if n := open - len(c.dst); n > 0 {
		// The object starts in the pending output: copy what precedes it.
		c.dst = append(c.dst, c.src[c.pend:c.pend+n]...)
		c.pend += n
	}
	flushed := len(c.dst)
	c.tmp = append(c.tmp[:0], c.dst[open:]...)
	c.dst = c.dst[:open]
	for i, m := range ms {
		if i > 0 {
			c.dst = append(c.dst, ',')
		}
		s, e := int(m.start), int(m.end)
		if s < flushed {
			c.dst = append(c.dst, c.tmp[s-open:min(e, flushed)-open]...)
		}
		if e > flushed {
			c.dst = append(c.dst, c.src[c.pend+max(s, flushed)-flushed:c.pend+e-flushed]...)
		}
	}
	c.pend = c.pos - 1 // the closing brace, still to output
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
		return bytes.Compare(c.key(a), c.key(b))
	}
	return compareKeys(c.key(a), c.key(b))
}

// keyPrefix returns the first 8 bytes of k, big endian, zero-padded. It
// may read k's spare capacity.
func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	if cap(k) >= 8 {
		// Load 8 bytes and clear those past the name.
		return binary.BigEndian.Uint64(k[:8]) &^ (^uint64(0) >> (8 * len(k)))
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

// number reads the JSON number at c.pos and outputs it in ECMAScript
// form.
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
	lit := c.src[start:p]
	if plain && intEnd-digits <= 15 {
		// Exactly representable, and written the way ECMAScript would:
		// output as it is, but -0.
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			c.flush()
			c.pend = start + 1
		}
		c.pos = p
		return nil
	}
	c.pos = p
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return c.errorf("number %s out of the range of IEEE 754 double precision", lit)
	}
	c.pos = start
	c.flush()
	c.dst = appendES6Number(c.dst, f)
	c.pos, c.pend = p, p
	return nil
}
