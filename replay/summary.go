package replay

import (
	"cmp"
	"slices"
	"time"

	"github.com/sandtrail/sandtrail/chain"
)

// Summary aggregates replayed events per run, with the verdict of a
// chain.Verifier over the events it saw. It is not safe for concurrent
// use.
type Summary struct {
	runs map[string]*RunSummary
	v    *chain.Verifier
}

// RunSummary is one run's line of a summary.
type RunSummary struct {
	Run         string
	Hosts       []string
	Events      int // events seen, duplicates included
	First, Last time.Time
	// Classes counts events per class_uid.
	Classes     map[int]int
	MaxSeverity int
	// Trail is the chain verdict on the events seen: only the whole run
	// can be complete, so a filtered replay shows runs incomplete.
	Trail chain.RunReport
}

// NewSummary returns an empty Summary whose verifier checks signatures
// with cfg.PublicKey, if set.
func NewSummary(cfg chain.VerifierConfig) *Summary {
	return &Summary{runs: map[string]*RunSummary{}, v: chain.NewVerifier(cfg)}
}

// Add counts one message.
func (s *Summary) Add(m *Message) {
	run := m.Run
	if run == "" {
		run = "(no run id)"
	}
	r := s.runs[run]
	t := time.UnixMilli(m.Time).UTC()
	if r == nil {
		r = &RunSummary{Run: run, First: t, Last: t, Classes: map[int]int{}}
		s.runs[run] = r
	}
	r.Events++
	r.Classes[m.ClassUID]++
	if t.Before(r.First) {
		r.First = t
	}
	if t.After(r.Last) {
		r.Last = t
	}
	if m.SeverityID != 99 && m.SeverityID > r.MaxSeverity {
		r.MaxSeverity = m.SeverityID
	}
	if m.Host != "" && !slices.Contains(r.Hosts, m.Host) {
		r.Hosts = append(r.Hosts, m.Host)
	}
	s.v.Add(m.Data, chain.Origin{Source: m.Subject, Index: int64(m.StreamSeq)})
}

// Runs returns the runs in the order of their first event's time.
func (s *Summary) Runs() []RunSummary {
	rep := s.v.Report()
	trails := map[string]chain.RunReport{}
	for _, r := range rep.Runs {
		trails[r.Run] = r
	}
	out := make([]RunSummary, 0, len(s.runs))
	for _, r := range s.runs {
		rs := *r
		if tr, ok := trails[r.Run]; ok {
			rs.Trail = tr
		} else {
			rs.Trail = chain.RunReport{Run: r.Run, Status: chain.StatusUnchained}
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RunSummary) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return cmp.Compare(a.Run, b.Run)
	})
	return out
}
