package syslog

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sandtrail/sandtrail/collector"
)

// Severity returns the syslog severity (RFC 5424 section 6.2.1) for an
// OCSF severity_id; the table is in the package documentation.
func Severity(ocsfSeverityID int) int {
	switch ocsfSeverityID {
	case 1: // Informational
		return 6 // informational
	case 2: // Low
		return 5 // notice
	case 3: // Medium
		return 4 // warning
	case 4: // High
		return 3 // error
	case 5: // Critical
		return 2 // critical
	case 6: // Fatal
		return 1 // alert
	}
	return 5 // Unknown, Other and anything else: notice
}

// formatter turns events into RFC 5424 messages.
type formatter struct {
	facility int
	hostname string // for events without device.hostname
	appName  string
	sdID     string // sandtrail@<PEN>
}

// appendFrame appends the octet-counted frame of ev ("LEN SP SYSLOG-MSG",
// RFC 6587 section 3.4.1) to b. It returns b unchanged and an error if the
// message would be longer than max bytes.
func (f *formatter) appendFrame(b []byte, ev *collector.Event, max int) ([]byte, error) {
	// Reserve room for the length prefix, write the message after it,
	// then move the message to follow the real prefix.
	const reserve = 9 // up to 8 digits (MaxMaxMessageSize) and the space
	start := len(b)
	b = append(b, make([]byte, reserve)...)
	b = f.appendMessage(b, ev)
	n := len(b) - start - reserve
	if n > max {
		return b[:start], fmt.Errorf("syslog: message of %d bytes exceeds max_message_size %d (events are never truncated)", n, max)
	}
	var prefix [reserve]byte
	p := strconv.AppendInt(prefix[:0], int64(n), 10)
	p = append(p, ' ')
	copy(b[start:], p)
	copy(b[start+len(p):], b[start+reserve:])
	return b[:start+len(p)+n], nil
}

// appendMessage appends ev as an RFC 5424 SYSLOG-MSG.
func (f *formatter) appendMessage(b []byte, ev *collector.Event) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(f.facility*8+Severity(ev.SeverityID)), 10)
	b = append(b, ">1 "...)
	b = appendTimestamp(b, ev.Time)
	b = append(b, ' ')
	if ev.Host != "" {
		b = appendToken(b, ev.Host, 255)
	} else {
		b = append(b, f.hostname...)
	}
	b = append(b, ' ')
	b = append(b, f.appName...)
	b = append(b, " - "...) // PROCID: the collector relays other processes' events
	b = appendMsgID(b, ev)
	b = append(b, " ["...)
	b = append(b, f.sdID...)
	b = appendParam(b, "class_uid", strconv.Itoa(ev.ClassUID))
	b = appendParam(b, "severity_id", strconv.Itoa(ev.SeverityID))
	if ev.RunID != "" {
		b = appendParam(b, "run", ev.RunID)
	}
	b = appendParam(b, "event_uid", ev.UID)
	b = append(b, ']')
	if len(ev.Data) > 0 {
		b = append(b, ' ')
		b = append(b, ev.Data...) // MSG-ANY: no BOM, see the package documentation
	}
	return b
}

// appendTimestamp appends ms (milliseconds since the epoch) as an RFC 5424
// TIMESTAMP in UTC with milliseconds, or the NILVALUE when it is 0 or has
// no four-digit year.
func appendTimestamp(b []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	if ms == 0 || t.Year() < 1 || t.Year() > 9999 {
		return append(b, '-')
	}
	return t.AppendFormat(b, "2006-01-02T15:04:05.000Z")
}

// appendToken appends s with every character outside PRINTUSASCII replaced
// by '_', cut to max bytes; "-" if s is empty.
func appendToken(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendMsgID appends the class name as a token: lower case, spaces as
// '_', only [a-z0-9_], at most 32 characters ("Compliance Finding" ->
// "compliance_finding"); "class_<uid>" without a name.
func appendMsgID(b []byte, ev *collector.Event) []byte {
	start := len(b)
	for i := 0; i < len(ev.ClassName) && len(b)-start < 32; i++ {
		switch c := ev.ClassName[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c == ' ' || c == '-':
			b = append(b, '_')
		}
	}
	if len(b) == start {
		b = append(b, "class_"...)
		b = strconv.AppendInt(b, int64(ev.ClassUID), 10)
	}
	return b
}

// appendParam appends ` name="value"` with '"', '\' and ']' escaped by a
// backslash (RFC 5424 section 6.3.3). Values are the event's own UTF-8.
func appendParam(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
