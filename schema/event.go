package schema

import (
	"encoding/json"
	"strconv"
)

// Event is implemented by every generated class type (*ComplianceFinding,
// *DetectionFinding, ...). Its MarshalJSON writes the class-derived
// attributes, so an Event always encodes consistently.
type Event interface {
	json.Marshaler
	// ClassUID returns the OCSF class_uid.
	ClassUID() int
	// ClassName returns the OCSF class caption.
	ClassName() string
	// TypeUID returns class_uid*100 + activity_id.
	TypeUID() int64
	// EventBase returns the base attributes (metadata, time, severity...) for
	// stamping; the pointer aliases the event.
	EventBase() *Base
	// AppendJSON appends the event's JSON encoding (class_uid first) to b.
	AppendJSON(b []byte) ([]byte, error)
}

// ClassInfo describes one generated class.
type ClassInfo struct {
	UID          int
	Name         string // e.g. compliance_finding
	Caption      string // e.g. Compliance Finding
	CategoryUID  int
	CategoryName string
}

// Classes returns the classes sandtrail generates, in class_uid order.
func Classes() []ClassInfo {
	out := make([]ClassInfo, len(classInfo))
	copy(out, classInfo[:])
	return out
}

// Class returns the class with the given uid.
func Class(uid int) (ClassInfo, bool) {
	for _, c := range classInfo {
		if c.UID == uid {
			return c, true
		}
	}
	return ClassInfo{}, false
}

// NewEvent returns an empty event of the class with the given uid, for
// decoding with encoding/json; ok is false for a class sandtrail does not
// generate.
func NewEvent(classUID int) (e Event, ok bool) {
	e = newEvent(classUID)
	return e, e != nil
}

// ProfileSet returns sandtrail's OCSF profiles.
func ProfileSet() []string { return append([]string(nil), profileNames[:]...) }

// Version is the OCSF schema version the package was generated from.
const Version = ocsfVersion

// Ptr returns a pointer to v, for optional numeric and boolean attributes.
func Ptr[T any](v T) *T { return &v }

func enumString(caption string, v int64) string {
	if caption == "" {
		return "invalid(" + strconv.FormatInt(v, 10) + ")"
	}
	return caption + "(" + strconv.FormatInt(v, 10) + ")"
}
