package schema

import (
	"errors"
	"strings"
)

// ErrUnknownClass is wrapped by the ValidationError of an event whose
// class_uid is not one of sandtrail's classes.
var ErrUnknownClass = errors.New("schema: unknown class")

// ErrorKind says which kind of rule an event broke.
type ErrorKind uint8

const (
	// KindSyntax: the bytes are not a single well-formed JSON object.
	KindSyntax ErrorKind = iota + 1
	// KindSchema: a rule the generated JSON Schema also states (required,
	// unknown attribute, type, enum, pattern, range, constraint, const).
	KindSchema
	// KindSemantic: a rule JSON Schema cannot state (type_uid arithmetic,
	// caption siblings, observable paths, declared profiles, duplicate keys,
	// integers written as decimals, invalid UTF-8, size and depth limits).
	KindSemantic
)

func (r ErrorKind) String() string {
	switch r {
	case KindSyntax:
		return "syntax"
	case KindSchema:
		return "schema"
	case KindSemantic:
		return "semantic"
	}
	return "unknown"
}

// ValidationError describes the first problem found in an event.
type ValidationError struct {
	Class  string // class name (e.g. compliance_finding) when known
	Path   string // JSON Pointer (RFC 6901) of the offending value or key; "" for the whole document
	Reason string // what is wrong, for a person
	Kind   ErrorKind
	Offset int   // byte offset in the event
	Err    error // wrapped sentinel, e.g. ErrUnknownClass; may be nil
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Class != "" {
		b.WriteString(e.Class)
		b.WriteString(": ")
	}
	if e.Path == "" {
		b.WriteString("/")
	} else {
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *ValidationError) Unwrap() error { return e.Err }
