package replay

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/bus"
)

// Severity ids of OCSF 1.8 that --severity orders: 1 Informational up to
// 6 Fatal. 0 (Unknown) and 99 (Other) have no rank: a minimum severity
// excludes them.
const (
	minRankedSeverity = 1
	maxRankedSeverity = 6
)

// maxFilterSubjects bounds the subject filters of one consumer (classes x
// severities x hosts).
const maxFilterSubjects = 256

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
	// (Informational) to 6 (Fatal). Default 0: all, Unknown and Other
	// included.
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
	if f.MinSeverity < 0 || f.MinSeverity > maxRankedSeverity {
		return fmt.Errorf("replay: minimum severity %d: want 1 (Informational) to 6 (Fatal)", f.MinSeverity)
	}
	for _, c := range f.Classes {
		if c <= 0 {
			return fmt.Errorf("replay: class %d: want a positive class_uid", c)
		}
	}
	for _, h := range f.Hosts {
		if h == "" {
			return errors.New("replay: empty host name")
		}
	}
	if n := len(f.subjects()); n > maxFilterSubjects {
		return fmt.Errorf("replay: %d subject filters (classes x severities x hosts), more than %d: select fewer", n, maxFilterSubjects)
	}
	return nil
}

// subjects returns the consumer's subject filters: one per combination of
// class, severity and host, with '*' for what is not selected. The layout
// is bus's: sandtrail.events.<class_uid>.<severity_id>.<host>.
func (f Filter) subjects() []string {
	classes := []string{"*"}
	if len(f.Classes) > 0 {
		classes = classes[:0]
		seen := map[int]bool{}
		for _, c := range f.Classes {
			if !seen[c] {
				seen[c] = true
				classes = append(classes, strconv.Itoa(c))
			}
		}
	}
	sevs := []string{"*"}
	if f.MinSeverity >= minRankedSeverity {
		sevs = sevs[:0]
		for s := f.MinSeverity; s <= maxRankedSeverity; s++ {
			sevs = append(sevs, strconv.Itoa(s))
		}
	}
	hosts := []string{"*"}
	if len(f.Hosts) > 0 {
		hosts = hosts[:0]
		for _, h := range f.Hosts {
			if t := bus.Token(h); !slices.Contains(hosts, t) {
				hosts = append(hosts, t)
			}
		}
	}
	if len(classes) == 1 && classes[0] == "*" && len(sevs) == 1 && sevs[0] == "*" && len(hosts) == 1 && hosts[0] == "*" {
		return []string{bus.EventsWildcard}
	}
	var out []string
	for _, c := range classes {
		for _, s := range sevs {
			for _, h := range hosts {
				out = append(out, strings.Join([]string{bus.EventsPrefix, c, s, h}, "."))
			}
		}
	}
	return out
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
