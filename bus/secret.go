package bus

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what every rendering of a [Secret] shows.
const redacted = "[REDACTED]"

// Secret holds a password, token or other credential. Every way Go, fmt,
// encoding/json, encoding/text and zerolog render it shows "[REDACTED]", so
// a Secret can sit in a config struct that is logged or printed with %+v.
// [Secret.Reveal] is the only way to read the value back.
//
// Only exported fields of type Secret are protected: fmt does not call
// methods on unexported struct fields.
type Secret string

// Reveal returns the secret value. Call it only to hand the value to the
// code that authenticates, never to log or format it.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns "[REDACTED]", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" whatever the verb, so %x, %q or %d cannot
// print the value either.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText returns "[REDACTED]"; encoding/json and zerolog's Interface
// use it.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "[REDACTED]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue returns "[REDACTED]", for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
