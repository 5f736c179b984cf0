package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/bus"
)

// Filter selects events. The zero value selects every event.
type Filter struct {
	// Since and Until bound the event's time (OCSF time): Since
	// inclusive, Until exclusive. Zero means unbounded.
	Since, Until time.Time
	// Run selects one run (metadata.correlation_uid). Default: all.
	Run string
	// Classes selects OCSF class_uids. Default: all.
	Classes []int
	// MinSeverity selects severity_id >= MinSeverity, from 1
	// (Informational) to 6 (Fatal), and 99 (Other), whose rank is unknown
	// (bus.EventFilter, as the collector's sink filters). Default 0: all,
	// 0 (Unknown) included.
	MinSeverity int
	// Hosts selects device hostnames, compared as subject tokens
	// (bus.Token: case-insensitive, '.' as '_'). Default: all.
	Hosts []string
}

// Validate reports a filter that can match nothing or is malformed.
func (f Filter) Validate() error {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("replay: until %s is not after since %s", f.Until.Format(time.RFC3339Nano), f.Since.Format(time.RFC3339Nano))
	}
	if _, err := f.subjects(); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// subjects returns the consumer's filter subjects: what the subject can
// say of the filter (class, severity, host); match checks the rest.
func (f Filter) subjects() ([]string, error) {
	return bus.EventFilter{Classes: f.Classes, MinSeverity: f.MinSeverity, Hosts: f.Hosts}.Subjects()
}

// match reports whether an event's envelope passes the filters that its
// subject cannot express: the time range and the run.
func (f Filter) match(e *Envelope) bool {
	if f.Run != "" && e.Run != f.Run {
		return false
	}
	if !f.Since.IsZero() && e.Time < f.Since.UnixMilli() {
		return false
	}
	if !f.Until.IsZero() && e.Time >= f.Until.UnixMilli() {
		return false
	}
	return true
}

// String describes the filter for logs and progress lines.
func (f Filter) String() string {
	var parts []string
	if !f.Since.IsZero() {
		parts = append(parts, "since "+f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "until "+f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Run != "" {
		parts = append(parts, "run "+f.Run)
	}
	if len(f.Classes) > 0 {
		cs := make([]string, len(f.Classes))
		for i, c := range f.Classes {
			cs[i] = strconv.Itoa(c)
		}
		parts = append(parts, "class "+strings.Join(cs, ","))
	}
	if f.MinSeverity > 0 {
		parts = append(parts, "severity >= "+strconv.Itoa(f.MinSeverity))
	}
	if len(f.Hosts) > 0 {
		parts = append(parts, "host "+strings.Join(f.Hosts, ","))
	}
	if len(parts) == 0 {
		return "all events"
	}
	return strings.Join(parts, ", ")
}
