package schema

import (
	"net/netip"
	"strings"
)

// Checks for OCSF typed strings. Each accepts exactly what the pattern in
// the generated JSON Schema accepts (see internal/ocsfgen/jsonschema.go);
// the differential test holds them together.

func formatName(f format) string {
	switch f {
	case fmtUUID:
		return "uuid_t"
	case fmtIP:
		return "ip_t"
	case fmtMAC:
		return "mac_t"
	case fmtSubnet:
		return "subnet_t"
	case fmtDatetime:
		return "datetime_t"
	case fmtEmail:
		return "email_t"
	case fmtBytes:
		return "bytestring_t"
	case fmtPort:
		return "port_t"
	}
	return "string"
}

func checkFormat(f format, v []byte) bool {
	switch f {
	case fmtUUID:
		return isUUID(v)
	case fmtIP:
		return isIP(v)
	case fmtMAC:
		return isMAC(v)
	case fmtSubnet:
		return true // OCSF gives subnet_t only a length limit
	case fmtDatetime:
		return isDatetime(v)
	case fmtEmail:
		return isEmail(v)
	case fmtBytes:
		return isBase64(v)
	}
	return true
}

func isUUID(v []byte) bool {
	if len(v) != 36 {
		return false
	}
	for i, c := range v {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isMAC(v []byte) bool {
	if len(v) != 17 {
		return false
	}
	for i, c := range v {
		if i%3 == 2 {
			if c != ':' && c != '-' {
				return false
			}
		} else if !isHex(c) {
			return false
		}
	}
	return true
}

// isIP accepts a dotted-quad IPv4 address without leading zeros, or an IPv6
// address (optionally with an embedded IPv4 tail and a zone).
func isIP(v []byte) bool {
	s := string(v) // netip may keep the zone: copy (IP attributes are rare in sandtrail events)
	host, zone, hasZone := strings.Cut(s, "%")
	if hasZone {
		if zone == "" || !strings.Contains(host, ":") {
			return false
		}
		for i := 0; i < len(zone); i++ {
			c := zone[i]
			if !(isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c == '_' || c == '.' || c == '~' || c == '-') {
				return false
			}
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if a.Is4() {
		return true
	}
	// netip accepts IPv6 forms the pattern does not: a dotted tail anywhere
	// but after 6 groups (or after ::), which both reject. Enough here: a
	// hex group of 1-4 digits is all netip takes, as the pattern.
	return true
}

func isDatetime(v []byte) bool {
	// ^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?([Zz]|[\+-]\d{2}:\d{2})?$
	if len(v) < 19 {
		return false
	}
	for i := 0; i < 19; i++ {
		c := v[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != 'T' && c != 't' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if !isDigit(c) {
				return false
			}
		}
	}
	r := v[19:]
	if len(r) > 0 && r[0] == '.' {
		i := 1
		for i < len(r) && isDigit(r[i]) {
			i++
		}
		if i == 1 {
			return false
		}
		r = r[i:]
	}
	switch {
	case len(r) == 0:
		return true
	case len(r) == 1:
		return r[0] == 'Z' || r[0] == 'z'
	case len(r) == 6:
		return (r[0] == '+' || r[0] == '-') && isDigit(r[1]) && isDigit(r[2]) && r[3] == ':' && isDigit(r[4]) && isDigit(r[5])
	}
	return false
}

// isEmail follows the OCSF email_t pattern literally, including its
// character class "+-/", which is the range '+' to '/'.
func isEmail(v []byte) bool {
	at := -1
	for i, c := range v {
		if c == '@' {
			at = i
			break
		}
	}
	if at <= 0 {
		return false
	}
	for _, c := range v[:at] {
		if !emailLocal(c) {
			return false
		}
	}
	// [a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+ : some dot after at least one label char,
	// with only label chars before it.
	dom := v[at+1:]
	i := 0
	for i < len(dom) && isLabel(dom[i]) {
		i++
	}
	if i == 0 || i >= len(dom) || dom[i] != '.' || i+1 >= len(dom) {
		return false
	}
	for _, c := range dom[i+1:] {
		if !isLabel(c) && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isLabel(c byte) bool { return isAlnum(c) || c == '-' }

func emailLocal(c byte) bool {
	if isAlnum(c) || (c >= '+' && c <= '/') {
		return true
	}
	return strings.IndexByte("!#$%&'=?^_`{|}~.", c) >= 0
}

// isBase64 follows the OCSF bytestring_t pattern: empty, or standard or
// URL-safe base64 whose last group is padded ("xx==" or "xxx=").
func isBase64(v []byte) bool {
	n := len(v)
	if n == 0 {
		return true
	}
	if n%4 != 0 || v[n-1] != '=' {
		return false
	}
	body := v[:n-1]
	if v[n-2] == '=' {
		body = v[:n-2]
	}
	std, url := true, true
	for _, c := range body {
		alnum := isAlnum(c)
		std = std && (alnum || c == '+' || c == '/')
		url = url && (alnum || c == '-' || c == '_')
	}
	return std || url
}
