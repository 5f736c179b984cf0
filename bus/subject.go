package bus

import (
	"strconv"
	"strings"
)

// The subject layout. Every other package builds subjects through the
// functions below, so changing the layout means changing this file only.
//
//	sandtrail.events.<class_uid>.<severity_id>.<host>
//	sandtrail.dlq.<reason>
const (
	// EventsPrefix is the subject prefix of every OCSF event.
	EventsPrefix = "sandtrail.events"
	// DLQPrefix is the subject prefix of every dead letter.
	DLQPrefix = "sandtrail.dlq"

	// EventsWildcard is the filter the events stream captures.
	EventsWildcard = EventsPrefix + ".>"
	// DLQWildcard is the filter the dead-letter stream captures.
	DLQWildcard = DLQPrefix + ".>"
)

// maxTokenLen bounds a sanitised token: the longest DNS name is 253 bytes,
// and a subject token has no reason to be longer than that.
const maxTokenLen = 253

// unknownToken replaces an empty host or reason, so the subject keeps its
// shape and a consumer's filter still matches.
const unknownToken = "unknown"

// EventSubject returns the subject an event of the given OCSF class and
// severity, produced on host, is published to:
// sandtrail.events.<class_uid>.<severity_id>.<host>.
//
// The host is turned into one subject token by [Token]: "web-1.example.com"
// becomes "web-1_example_com".
func EventSubject(classUID, severityID int, host string) string {
	return EventsPrefix + "." + strconv.Itoa(classUID) + "." + strconv.Itoa(severityID) + "." + Token(host)
}

// DLQSubject returns the subject a dead letter is published to:
// sandtrail.dlq.<reason>, the reason made into one token by [Token].
func DLQSubject(reason string) string {
	return DLQPrefix + "." + Token(reason)
}

// FilterClass returns a consumer filter subject matching every event of one
// OCSF class, whatever its severity and host.
func FilterClass(classUID int) string {
	return EventsPrefix + "." + strconv.Itoa(classUID) + ".>"
}

// FilterClassSeverity returns a consumer filter subject matching every event
// of one OCSF class with one severity, from any host.
func FilterClassSeverity(classUID, severityID int) string {
	return EventsPrefix + "." + strconv.Itoa(classUID) + "." + strconv.Itoa(severityID) + ".>"
}

// Token turns s into a single, valid NATS subject token. The mapping is:
//
//   - ASCII letters are lowercased (host names are case-insensitive);
//   - ASCII letters, digits, '-' and '_' are kept;
//   - every other character, one per rune, becomes '_': this covers the
//     token separator '.', the wildcards '*' and '>', whitespace, control
//     characters, '$' and all non-ASCII runes (invalid UTF-8 included);
//   - the result is cut to 253 bytes, the longest DNS name;
//   - an empty string becomes "unknown".
//
// The mapping is not injective ("a.b" and "a_b" give the same token): the
// token is for routing and filtering only. The exact host name travels in
// the event itself (device.hostname).
func Token(s string) string {
	if s == "" {
		return unknownToken
	}
	var b strings.Builder
	b.Grow(min(len(s), maxTokenLen))
	for _, r := range s {
		if b.Len() == maxTokenLen {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case 'A' <= r && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Matches reports whether subject is matched by filter, as the NATS server
// matches them: '*' is any one token, a final '>' one or more tokens.
func Matches(filter, subject string) bool {
	for {
		ftok, frest, fmore := strings.Cut(filter, ".")
		stok, srest, smore := strings.Cut(subject, ".")
		switch {
		case ftok == ">" && !fmore:
			return stok != ""
		case ftok != "*" && ftok != stok:
			return false
		case !fmore || !smore:
			return fmore == smore
		}
		filter, subject = frest, srest
	}
}
