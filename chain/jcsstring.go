package chain

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Strings in RFC 8785: reading JSON strings, writing them in canonical
// escaping, and ordering member names by UTF-16 code units.

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

// str reads the JSON string at c.pos and outputs it in canonical
// escaping, and returns flags saying what it holds. Only escapes that are
// not canonical already (\/, \u) are rewritten; the rest of the string is
// output as it is.
func (c *canonicalizer) str() (flags uint8, err error) {
	src := c.src   // a local: the loop keeps it in a register
	p := c.pos + 1 // after the opening quote
	for {
		// Fast path: skip the bytes that need no change, 8 at a time.
		for {
			if p+8 > len(src) {
				for p < len(src) && plain[src[p]] {
					p++
				}
				break
			}
			if s := special(binary.LittleEndian.Uint64(src[p:])); s != 0 {
				p += bits.TrailingZeros64(s) / 8 // the first byte not plain
				break
			}
			p += 8
		}
		if p >= len(src) {
			c.pos = p
			return 0, c.errorf("unterminated string")
		}
		switch ch := src[p]; {
		case ch == '"':
			c.pos = p + 1
			return flags, nil
		case ch < 0x20:
			c.pos = p
			return 0, c.errorf("control character in a string")
		case ch >= 0x80:
			r, size := utf8.DecodeRune(src[p:])
			if r == utf8.RuneError && size <= 1 {
				c.pos = p
				return 0, c.errorf("invalid UTF-8 in a string")
			}
			p += size
			flags |= strNonASCII
		default: // '\\'
			if p+1 < len(src) {
				switch src[p+1] {
				case '"', '\\', 'b', 'f', 'n', 'r', 't':
					// Canonical already.
					p += 2
					flags |= strEscaped
					continue
				}
			}
			c.pos = p
			c.flush()
			n := len(c.dst)
			if err := c.escape(); err != nil {
				return 0, err
			}
			c.pend = c.pos
			if c.dst[n] == '\\' {
				flags |= strEscaped
			} else if c.dst[n] >= 0x80 {
				flags |= strNonASCII
			}
			p = c.pos
		}
	}
}

// special is non-zero when one of the 8 bytes in x (little endian) is not
// plain: below 0x20, '"', '\\' or 0x80 and above; it sets the high bit of
// such bytes. It may flag a plain byte after one that is not (a borrow
// carries into it), never miss one nor flag a plain byte before the first
// that is not: its lowest set bit is in the first byte that is not plain.
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
