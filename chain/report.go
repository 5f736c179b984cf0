package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// Kind names a problem found in a run. Its string is stable: it is the
// "kind" of the JSON report.
type Kind string

// Problem kinds. All but KindOutOfOrder (unless StrictOrder) and the
// notes fail verification.
const (
	// KindModified: the event's content does not match its own hash; it
	// was changed after it was sealed.
	KindModified Kind = "modified"
	// KindConflict: two different events claim the same metadata.uid or
	// the same sequence number.
	KindConflict Kind = "conflict"
	// KindBrokenChain: an event's prev is not the hash of the event
	// before it: that event was altered and re-hashed, or replaced.
	KindBrokenChain Kind = "broken_chain"
	// KindReordered: an event's prev is the hash of another event of the
	// run than the one before it: the run's events were renumbered.
	KindReordered Kind = "reordered"
	// KindBadLink: the integrity link is malformed or disagrees with the
	// event's metadata.
	KindBadLink Kind = "bad_link"
	// KindUnchained: an event of the run carries no integrity link.
	KindUnchained Kind = "unchained"
	// KindNoFinal: no final event: the run is still running, or its end
	// was lost or cut off.
	KindNoFinal Kind = "no_final"
	// KindForgedCount: the final count disagrees with the final event's
	// position, or several events claim to be final.
	KindForgedCount Kind = "forged_count"
	// KindAfterFinal: events numbered after the final event.
	KindAfterFinal Kind = "after_final"
	// KindBadSignature: the final event's signature does not verify.
	KindBadSignature Kind = "bad_signature"
	// KindUnsigned: a key was given but the final event is not signed.
	KindUnsigned Kind = "unsigned"
	// KindOtherKey: the final event names another signing key.
	KindOtherKey Kind = "other_key"
	// KindOutOfOrder: an event arrived after one with a higher sequence
	// number. A note unless VerifierConfig.StrictOrder.
	KindOutOfOrder Kind = "out_of_order"
)

// Status is a run's verdict.
type Status string

const (
	// StatusComplete: every event from 1 to the final count is present,
	// unaltered and chained, and the signature verified (or was not
	// checked, see Signature).
	StatusComplete Status = "complete"
	// StatusIncomplete: nothing was altered, but events are missing or
	// the final event was never seen.
	StatusIncomplete Status = "incomplete"
	// StatusTampered: something was altered, forged, reordered or
	// injected.
	StatusTampered Status = "tampered"
	// StatusUnchained: events name the run, but none carries integrity
	// data (emitted before chaining was enabled, or stripped).
	StatusUnchained Status = "unchained"
)

// SigStatus is what became of a run's signature.
type SigStatus string

const (
	SigValid      SigStatus = "valid"       // verified with the given key
	SigInvalid    SigStatus = "invalid"     // does not verify with the given key
	SigNotChecked SigStatus = "not_checked" // signed, but no key was given
	SigUnsigned   SigStatus = "unsigned"    // the final event carries no signature
	SigOtherKey   SigStatus = "other_key"   // signed with a key other than the given one
	SigNoFinal    SigStatus = "no_final"    // no final event, so nothing to check
)

// Problem is one finding in a run.
type Problem struct {
	Kind   Kind     `json:"kind"`
	Seq    int64    `json:"seq,omitempty"`
	UID    string   `json:"uid,omitempty"`
	At     []Origin `json:"at,omitempty"`
	Detail string   `json:"detail"`
}

// Range is an inclusive range of sequence numbers.
type Range struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

func (r Range) String() string {
	if r.First == r.Last {
		return strconv.FormatInt(r.First, 10)
	}
	return strconv.FormatInt(r.First, 10) + "-" + strconv.FormatInt(r.Last, 10)
}

// Malformed is an input that could not be attributed to a run.
type Malformed struct {
	At     Origin `json:"at"`
	Reason string `json:"reason"`
}

// RunReport is the verdict on one run.
type RunReport struct {
	Run    string `json:"run"`
	Status Status `json:"status"`
	// Events is the number of distinct sequence numbers seen.
	Events int64 `json:"events"`
	// LastSeq is the highest sequence number seen.
	LastSeq int64 `json:"last_seq"`
	// Final is whether the final event was seen; Count is what it states.
	Final bool  `json:"final"`
	Count int64 `json:"count,omitempty"`
	// Duplicates counts identical copies of events (same uid, same
	// content), which are harmless and ignored.
	Duplicates int64     `json:"duplicates"`
	Signature  SigStatus `json:"signature"`
	KeyID      string    `json:"key_id,omitempty"`
	// Missing lists the absent sequence numbers from 1 to the final
	// event (or to LastSeq without one).
	Missing  []Range   `json:"missing,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
	// Notes are findings that do not fail the run (out-of-order arrival
	// unless StrictOrder).
	Notes []Problem `json:"notes,omitempty"`
	// Omitted counts problems left out of Problems (MaxProblems).
	Omitted int `json:"problems_omitted,omitempty"`
}

// OK reports whether the run verified.
func (r *RunReport) OK() bool { return r.Status == StatusComplete }

// MissingCount returns how many sequence numbers are missing.
func (r *RunReport) MissingCount() int64 {
	var n int64
	for _, m := range r.Missing {
		n += m.Last - m.First + 1
	}
	return n
}

// Report is the verdict on everything given to a Verifier.
type Report struct {
	// Events counts the inputs given to Add, duplicates and malformed
	// ones included.
	Events int64       `json:"events"`
	Runs   []RunReport `json:"runs"`
	// Malformed lists inputs that are not canonicalizable JSON or name
	// no run (the first MaxProblems; MalformedCount counts them all).
	Malformed      []Malformed `json:"malformed,omitempty"`
	MalformedCount int64       `json:"malformed_count"`
	// SignaturesChecked is whether a public key was given; KeyID is its
	// key id.
	SignaturesChecked bool   `json:"signatures_checked"`
	KeyID             string `json:"key_id,omitempty"`
	OK                bool   `json:"ok"`
}

// Report returns the verdict on the events added so far, runs in the order
// of their ids. Adding more events afterwards and calling Report again is
// allowed.
func (v *Verifier) Report() *Report {
	rep := &Report{
		Events: v.events, Malformed: slices.Clone(v.malformed), MalformedCount: v.malformedCount,
		SignaturesChecked: v.cfg.PublicKey != nil, KeyID: v.keyID,
	}
	ids := make([]string, 0, len(v.runs))
	for id := range v.runs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rep.OK = v.malformedCount == 0
	for _, id := range ids {
		rr := v.runReport(v.runs[id])
		rep.OK = rep.OK && rr.OK()
		rep.Runs = append(rep.Runs, rr)
	}
	return rep
}

func (v *Verifier) runReport(r *runState) RunReport {
	rr := RunReport{Run: r.id, Duplicates: r.copies, Notes: slices.Clone(r.notes), Omitted: r.omitted}
	probs := slices.Clone(r.problems)
	add := func(p Problem) {
		if len(probs) >= v.cfg.MaxProblems {
			rr.Omitted++
			return
		}
		probs = append(probs, p)
	}
	// Arrival order is kept for equal sequence numbers.
	order := make([]int, len(r.entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpInt(r.entries[a].seq, r.entries[b].seq)
	})
	// One representative per sequence number: the first whose content
	// matches its hash.
	var reps []*entry
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && r.entries[order[j]].seq == r.entries[order[i]].seq {
			j++
		}
		group := order[i:j]
		rep := &r.entries[group[0]]
		for _, k := range group {
			if e := &r.entries[k]; e.computed == e.stated {
				rep = e
				break
			}
		}
		for _, k := range group {
			if e := &r.entries[k]; e != rep && !e.same(rep) && e.uid != rep.uid {
				add(Problem{Kind: KindConflict, Seq: e.seq, UID: e.uid, At: []Origin{v.origin(rep), v.origin(e)},
					Detail: "two different events claim seq " + strconv.FormatInt(e.seq, 10) + " (uids " + rep.uid + " and " + e.uid + ")"})
			}
		}
		reps = append(reps, rep)
		i = j
	}
	rr.Events = int64(len(reps))
	var byHash map[[32]byte]int64
	for i, e := range reps {
		rr.LastSeq = e.seq
		if e.computed != e.stated {
			add(Problem{Kind: KindModified, Seq: e.seq, UID: e.uid, At: []Origin{v.origin(e)},
				Detail: "content does not match its hash: changed after it was sealed"})
		}
		switch {
		case e.seq == 1:
			if e.prev != zeroHash {
				add(Problem{Kind: KindBrokenChain, Seq: 1, UID: e.uid, At: []Origin{v.origin(e)},
					Detail: "seq 1 does not start a chain (its prev is not zero)"})
			}
		case i > 0 && reps[i-1].seq == e.seq-1:
			if e.prev == reps[i-1].stated {
				break
			}
			if byHash == nil {
				byHash = make(map[[32]byte]int64, len(reps))
				for _, x := range reps {
					byHash[x.stated] = x.seq
				}
			}
			if j, ok := byHash[e.prev]; ok {
				add(Problem{Kind: KindReordered, Seq: e.seq, UID: e.uid, At: []Origin{v.origin(e)},
					Detail: "seq " + strconv.FormatInt(e.seq, 10) + " chains to seq " + strconv.FormatInt(j, 10) +
						", not to seq " + strconv.FormatInt(e.seq-1, 10) + ": the run's events were renumbered"})
			} else {
				add(Problem{Kind: KindBrokenChain, Seq: e.seq, UID: e.uid, At: []Origin{v.origin(e)},
					Detail: "prev does not match the hash of seq " + strconv.FormatInt(e.seq-1, 10) +
						": that event was altered and re-hashed, or replaced"})
			}
		}
	}
	// The final event.
	var final *entry
	var finals []string
	for _, e := range reps {
		if e.final {
			final = e
			finals = append(finals, strconv.FormatInt(e.seq, 10))
		}
	}
	end := rr.LastSeq
	rr.Signature = SigNoFinal
	switch {
	case len(reps) == 0:
		// Unchained events only: nothing to check.
	case final == nil:
		last := reps[len(reps)-1]
		add(Problem{Kind: KindNoFinal, Seq: rr.LastSeq, UID: last.uid, At: []Origin{v.origin(last)},
			Detail: "no final event: the run is still running, or its last events were lost (highest seq " + strconv.FormatInt(rr.LastSeq, 10) + ")"})
	default:
		rr.Final, rr.Count, rr.KeyID, end = true, final.count, final.keyID, final.seq
		if len(finals) > 1 {
			add(Problem{Kind: KindForgedCount, Seq: final.seq, Detail: "several final events: seq " + strings.Join(finals, ", ")})
		}
		if final.count != final.seq {
			add(Problem{Kind: KindForgedCount, Seq: final.seq, UID: final.uid, At: []Origin{v.origin(final)},
				Detail: "the final event is seq " + strconv.FormatInt(final.seq, 10) + " but states count " + strconv.FormatInt(final.count, 10)})
		}
		if rr.LastSeq > final.seq {
			add(Problem{Kind: KindAfterFinal, Seq: final.seq + 1,
				Detail: "events numbered after the final event (seq " + strconv.FormatInt(final.seq+1, 10) + " to " +
					strconv.FormatInt(rr.LastSeq, 10) + "): the final count was forged or the run extended"})
		}
		rr.Signature = v.checkSignature(r.id, final, add)
	}
	rr.Missing = missing(reps, end)
	slices.SortStableFunc(probs, func(a, b Problem) int { return cmpInt(a.Seq, b.Seq) })
	rr.Problems = probs
	tampered, chained := rr.Omitted > 0, len(reps) > 0
	for _, p := range probs {
		tampered = tampered || p.Kind != KindNoFinal
	}
	switch {
	case !chained:
		rr.Status = StatusUnchained
	case tampered:
		rr.Status = StatusTampered
	case final == nil || len(rr.Missing) > 0:
		rr.Status = StatusIncomplete
	default:
		rr.Status = StatusComplete
	}
	return rr
}

func (v *Verifier) checkSignature(run string, f *entry, add func(Problem)) SigStatus {
	pub := v.cfg.PublicKey
	switch {
	case f.sig == "" && pub == nil:
		return SigUnsigned
	case f.sig == "":
		add(Problem{Kind: KindUnsigned, Seq: f.seq, UID: f.uid, At: []Origin{v.origin(f)},
			Detail: "the final event is not signed, but a key was given: its signature may have been stripped"})
		return SigUnsigned
	case pub == nil:
		return SigNotChecked
	case f.keyID != "" && f.keyID != v.keyID:
		add(Problem{Kind: KindOtherKey, Seq: f.seq, UID: f.uid, At: []Origin{v.origin(f)},
			Detail: "signed with key " + f.keyID + ", not with the given key " + v.keyID})
		return SigOtherKey
	}
	sig, err := base64.StdEncoding.DecodeString(f.sig)
	if err != nil || !ed25519.Verify(pub, SignedMessage(run, f.count, f.stated), sig) {
		add(Problem{Kind: KindBadSignature, Seq: f.seq, UID: f.uid, At: []Origin{v.origin(f)},
			Detail: "the signature over the chain head does not verify with key " + v.keyID})
		return SigInvalid
	}
	return SigValid
}

// missing returns the ranges of 1..end absent from reps (sorted by seq).
func missing(reps []*entry, end int64) []Range {
	var out []Range
	next := int64(1)
	for _, e := range reps {
		if e.seq > end {
			break
		}
		if e.seq > next {
			out = append(out, Range{next, e.seq - 1})
		}
		next = e.seq + 1
	}
	if next <= end {
		out = append(out, Range{next, end})
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
