package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unsafe"
)

// Envelope is what replay reads of an event without decoding it whole:
// the fields it filters, prints and summarises by.
type Envelope struct {
	UID        string // metadata.uid
	Run        string // metadata.correlation_uid
	Seq        int64  // metadata.sequence
	EventCode  string // metadata.event_code
	Time       int64  // time, ms since the epoch
	ClassUID   int
	ClassName  string
	SeverityID int
	Severity   string
	Host       string // device.hostname
	Message    string
}

// errEnvelope is wrapped by the errors of ParseEnvelope.
var errEnvelope = errors.New("replay: malformed event")

// ParseEnvelope reads the envelope of an encoded event in one pass over
// its top level, descending only into metadata and device. It checks the
// JSON only as far as it reads it; the event must be an object with an
// integer time. The strings of the Envelope share data's memory: data
// must not be modified while they are in use.
func ParseEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	s := scanner{b: data}
	hasTime := false
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "time":
			e.Time, err = s.int()
			hasTime = err == nil
		case "class_uid":
			var n int64
			n, err = s.int()
			e.ClassUID = int(n)
		case "severity_id":
			var n int64
			n, err = s.int()
			e.SeverityID = int(n)
		case "class_name":
			e.ClassName, err = s.string()
		case "severity":
			e.Severity, err = s.string()
		case "message":
			e.Message, err = s.string()
		case "metadata":
			err = s.object(func(key []byte) error {
				var err error
				switch string(key) {
				case "uid":
					e.UID, err = s.string()
				case "correlation_uid":
					e.Run, err = s.string()
				case "sequence":
					e.Seq, err = s.int()
				case "event_code":
					e.EventCode, err = s.string()
				default:
					err = s.skip()
				}
				return err
			})
		case "device":
			err = s.object(func(key []byte) error {
				if string(key) == "hostname" {
					var err error
					e.Host, err = s.string()
					return err
				}
				return s.skip()
			})
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return e, err
	}
	if !hasTime {
		return e, fmt.Errorf("%w: no integer time", errEnvelope)
	}
	return e, nil
}

// scanner walks JSON just enough to find the envelope.
type scanner struct {
	b []byte
	p int
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: offset %d: %s", errEnvelope, s.p, what)
}

func (s *scanner) ws() {
	for s.p < len(s.b) {
		switch s.b[s.p] {
		case ' ', '\t', '\n', '\r':
			s.p++
		default:
			return
		}
	}
}

// object calls member for each member name, with the scanner at its
// value; member must consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	s.ws()
	if s.p >= len(s.b) || s.b[s.p] != '{' {
		return s.fail("expected an object")
	}
	s.p++
	s.ws()
	if s.p < len(s.b) && s.b[s.p] == '}' {
		s.p++
		return nil
	}
	for {
		s.ws()
		k0, k1, esc, err := s.rawString()
		if err != nil {
			return err
		}
		key := s.b[k0:k1]
		if esc {
			str, err := unquote(s.b[k0-1 : k1+1])
			if err != nil {
				return s.fail("bad member name")
			}
			key = []byte(str)
		}
		s.ws()
		if s.p >= len(s.b) || s.b[s.p] != ':' {
			return s.fail("expected ':'")
		}
		s.p++
		s.ws()
		if err := member(key); err != nil {
			return err
		}
		s.ws()
		if s.p >= len(s.b) {
			return s.fail("unterminated object")
		}
		switch s.b[s.p] {
		case ',':
			s.p++
		case '}':
			s.p++
			return nil
		default:
			return s.fail("expected ',' or '}'")
		}
	}
}

// rawString consumes a string and returns the span of its body.
func (s *scanner) rawString() (start, end int, escaped bool, err error) {
	if s.p >= len(s.b) || s.b[s.p] != '"' {
		return 0, 0, false, s.fail("expected a string")
	}
	start = s.p + 1
	for p := start; ; {
		i := bytes.IndexByte(s.b[p:], '"')
		if i < 0 {
			return 0, 0, false, s.fail("unterminated string")
		}
		q := p + i
		// The quote is escaped when an odd number of backslashes
		// precede it.
		n := 0
		for q-1-n >= start && s.b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			s.p = q + 1
			return start, q, bytes.IndexByte(s.b[start:q], '\\') >= 0, nil
		}
		p = q + 1
	}
}

func (s *scanner) string() (string, error) {
	if s.p < len(s.b) && s.b[s.p] == 'n' {
		return "", s.skip() // null
	}
	k0, k1, esc, err := s.rawString()
	if err != nil {
		return "", err
	}
	if esc {
		return unquote(s.b[k0-1 : k1+1])
	}
	if k0 == k1 {
		return "", nil
	}
	// The string shares the event's bytes, which nothing modifies (see
	// Message.Data): no copy per field and event.
	return unsafe.String(&s.b[k0], k1-k0), nil
}

func unquote(quoted []byte) (string, error) {
	var str string
	err := json.Unmarshal(quoted, &str)
	return str, err
}

func (s *scanner) int() (int64, error) {
	start := s.p
	for s.p < len(s.b) && (s.b[s.p] == '-' || '0' <= s.b[s.p] && s.b[s.p] <= '9') {
		s.p++
	}
	n, err := strconv.ParseInt(string(s.b[start:s.p]), 10, 64)
	if err != nil || (s.p < len(s.b) && (s.b[s.p] == '.' || s.b[s.p] == 'e' || s.b[s.p] == 'E')) {
		// A float spelling of an integer (a SIEM re-serialised it).
		end := start
		for end < len(s.b) && s.b[end] != ',' && s.b[end] != '}' && s.b[end] != ']' && s.b[end] != ' ' && s.b[end] != '\n' {
			end++
		}
		f, ferr := strconv.ParseFloat(string(s.b[start:end]), 64)
		if ferr != nil || f != float64(int64(f)) {
			s.p = start
			return 0, s.fail("expected an integer")
		}
		s.p = end
		return int64(f), nil
	}
	return n, nil
}

// skip consumes one value of any kind.
func (s *scanner) skip() error {
	if s.p >= len(s.b) {
		return s.fail("unexpected end")
	}
	switch s.b[s.p] {
	case '"':
		_, _, _, err := s.rawString()
		return err
	case '{', '[':
		depth := 0
		for s.p < len(s.b) {
			switch s.b[s.p] {
			case '"':
				if _, _, _, err := s.rawString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.p++
					return nil
				}
			}
			s.p++
		}
		return s.fail("unterminated object or array")
	}
	start := s.p
	for s.p < len(s.b) && s.b[s.p] != ',' && s.b[s.p] != '}' && s.b[s.p] != ']' && s.b[s.p] != ' ' && s.b[s.p] != '\t' && s.b[s.p] != '\n' && s.b[s.p] != '\r' {
		s.p++
	}
	if s.p == start {
		return s.fail("expected a value")
	}
	return nil
}
