package bus

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// MaxFilterSubjects bounds the filter subjects of one consumer (classes x
// severities x hosts): the server matches every message against each.
const MaxFilterSubjects = 256

// Severity ids an EventFilter with a minimum keeps: the ranked OCSF
// severities 1 (Informational) to 6 (Fatal), then 99 (Other), whose rank
// is unknown and which a minimum therefore never hides. 0 (Unknown) is
// kept only when no minimum is set.
const (
	minRankedSeverity = 1
	maxRankedSeverity = 6
	otherSeverity     = 99
)

// EventFilter selects events by what their subject says, so that the
// server does the filtering: OCSF classes, a minimum severity and device
// hosts. The zero value selects every event. The collector's sink filters
// and replay's filters are both built on it.
type EventFilter struct {
	// Classes are OCSF class_uids. Empty: any class.
	Classes []int
	// MinSeverity keeps severity_id >= MinSeverity, from 1
	// (Informational) to 6 (Fatal), and 99 (Other). 0: every severity,
	// 0 (Unknown) included.
	MinSeverity int
	// Hosts are device host names, compared as subject tokens ([Token]:
	// case-insensitive, '.' read as '_'). Empty: any host.
	Hosts []string
}

// Subjects returns the consumer filter subjects f stands for: one per
// combination of class, severity and host, sorted, without duplicates and
// never overlapping (as the server requires of a consumer's filters). It
// reports a class that is not positive, a minimum severity out of 0-6, an
// empty host name, and more than [MaxFilterSubjects] combinations.
func (f EventFilter) Subjects() ([]string, error) {
	if len(f.Classes) == 0 && f.MinSeverity == 0 && len(f.Hosts) == 0 {
		return []string{EventsWildcard}, nil
	}
	var classes, sevs, hosts []string
	for _, c := range f.Classes {
		if c <= 0 {
			return nil, fmt.Errorf("class %d: want a positive class_uid", c)
		}
		classes = append(classes, strconv.Itoa(c))
	}
	switch {
	case f.MinSeverity < 0 || f.MinSeverity > maxRankedSeverity:
		return nil, fmt.Errorf("minimum severity %d: want 1 (Informational) to 6 (Fatal), or 0 for all", f.MinSeverity)
	case f.MinSeverity > 0:
		for s := f.MinSeverity; s <= maxRankedSeverity; s++ {
			sevs = append(sevs, strconv.Itoa(s))
		}
		sevs = append(sevs, strconv.Itoa(otherSeverity))
	}
	for _, h := range f.Hosts {
		if h == "" {
			return nil, errors.New("empty host name")
		}
		hosts = append(hosts, Token(h))
	}
	classes, sevs, hosts = uniq(classes, "*"), uniq(sevs, "*"), uniq(hosts, ">")
	if n := len(classes) * len(sevs) * len(hosts); n > MaxFilterSubjects {
		return nil, fmt.Errorf("%d classes x %d severities x %d hosts make %d filter subjects, more than %d: select fewer",
			len(classes), len(sevs), len(hosts), n, MaxFilterSubjects)
	}
	var out []string
	for _, c := range classes {
		for _, s := range sevs {
			for _, h := range hosts {
				if h == ">" && s == "*" {
					out = append(out, EventsPrefix+"."+c+".>") // any severity and host
				} else {
					out = append(out, EventsPrefix+"."+c+"."+s+"."+h)
				}
			}
		}
	}
	return out, nil
}

// uniq returns s sorted and without duplicates, or {wildcard} when s is empty.
func uniq(s []string, wildcard string) []string {
	if len(s) == 0 {
		return []string{wildcard}
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
