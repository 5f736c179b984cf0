package chain

import "strconv"

// appendES6Number appends f as ECMAScript's Number.prototype.toString
// writes it (ECMA-262 Number::toString, radix 10), which RFC 8785 section
// 3.2.2.3 adopts: the shortest decimal that reads back as f, in plain
// notation for decimal exponents from -6 to 20 and in exponent notation
// ("1e+21", "5e-7") outside. f must be finite; -0 is written "0".
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// The shortest round-tripping digits: d.ddddde±x.
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	e := len(s) - 1
	for s[e] != 'e' {
		e--
	}
	exp, _ := strconv.Atoi(string(s[e+1:]))
	var digs [24]byte
	d := append(digs[:0], s[0])
	if e > 1 {
		d = append(d, s[2:e]...) // skip the '.'
	}
	k := len(d)  // number of significant digits
	n := exp + 1 // the decimal point sits after n digits
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
