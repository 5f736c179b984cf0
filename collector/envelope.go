package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/sandtrail/sandtrail/schema"
)

// readEnvelope fills the routing fields of an Event from a validated
// event's JSON, without decoding the rest: it walks the top-level object
// and the metadata and device objects, and skips every other value. It
// relies on the validator for well-formedness and types, and only guards
// against running off the end.
func readEnvelope(data []byte) (Event, error) {
	ev := Event{Data: data}
	s := scanner{b: data}
	ok := s.object(func(key []byte) bool {
		switch string(key) { // no allocation: the compiler compares in place
		case "class_uid":
			ev.ClassUID = s.int()
		case "severity_id":
			ev.SeverityID = s.int()
		case "time":
			ev.Time = int64(s.int64())
		case "metadata":
			return s.object(func(key []byte) bool {
				switch string(key) {
				case "uid":
					ev.UID = s.str()
				case "correlation_uid":
					ev.RunID = s.str()
				default:
					return s.skip()
				}
				return !s.bad
			})
		case "device":
			return s.object(func(key []byte) bool {
				if string(key) == "hostname" {
					ev.Host = s.str()
					return !s.bad
				}
				return s.skip()
			})
		default:
			return s.skip()
		}
		return !s.bad
	})
	if !ok || s.bad {
		return ev, errors.New("collector: cannot read the event's envelope")
	}
	// The validator held class_name to the caption of class_uid.
	if c, ok := schema.Class(ev.ClassUID); ok {
		ev.ClassName = c.Caption
	}
	return ev, nil
}

// scanner walks JSON that is known to be valid.
type scanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object calls member for each key of the object at the cursor, with the
// cursor on the value, which member must consume.
func (s *scanner) object(member func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		s.bad = true
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key := s.key()
		s.ws()
		if s.bad || s.i >= len(s.b) || s.b[s.i] != ':' {
			s.bad = true
			return false
		}
		s.i++
		s.ws()
		if !member(key) {
			s.bad = true
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			s.bad = true
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			s.bad = true
			return false
		}
	}
}

// key reads an object key as it is written (sandtrail's keys have no
// escapes; one that has them matches none of the keys looked for).
func (s *scanner) key() []byte {
	start := s.i
	if s.str0(); s.bad || s.i-start < 2 {
		s.bad = true
		return nil
	}
	return s.b[start+1 : s.i-1]
}

// str reads a string, unescaping it when needed.
func (s *scanner) str() string {
	start := s.i
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.bad = true
		return ""
	}
	if s.str0(); s.bad {
		return ""
	}
	raw := s.b[start:s.i]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		s.bad = true
	}
	return out
}

func (s *scanner) int() int { return int(s.int64()) }

func (s *scanner) int64() int64 {
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] == '-' || s.b[s.i] >= '0' && s.b[s.i] <= '9') {
		s.i++
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64) // no allocation for a conversion passed on
	if err != nil {
		s.bad = true
	}
	return n
}

// skip steps over one value of any kind.
func (s *scanner) skip() bool {
	if s.i >= len(s.b) {
		s.bad = true
		return false
	}
	switch s.b[s.i] {
	case '"':
		s.str0()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if s.str0(); s.bad {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return !s.bad
				}
			}
			s.i++
		}
		s.bad = true
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return true
			}
			s.i++
		}
	}
	return !s.bad
}

// str0 steps over a string without decoding it.
func (s *scanner) str0() {
	j := s.i + 1
	for {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			s.bad = true
			return
		}
		j += k
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for p := j - 1; p > s.i && s.b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			s.i = j + 1
			return
		}
		j++
	}
}
