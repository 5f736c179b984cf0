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
