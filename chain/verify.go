package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strconv"
)

// VerifierConfig configures a Verifier. The zero value checks chains and
// counts and reports signatures "not checked".
type VerifierConfig struct {
	// PublicKey checks the final events' signatures; a run whose final
	// event is unsigned or signed by another key then fails. Default nil:
	// signatures are not checked.
	PublicKey ed25519.PublicKey
	// StrictOrder makes events of a run that arrive out of sequence order
	// a problem. Default false: a note, since a SIEM export has no order
	// and the stream keeps the publisher's order only without failures.
	StrictOrder bool
	// MaxProblems bounds the problems, notes and malformed inputs listed
	// per run (and in the report); the rest are counted. Default 100.
	MaxProblems int
}

// Origin says where an event was read: a file and line, or a stream and
// its stream sequence.
type Origin struct {
	Source string `json:"source"`
	Index  int64  `json:"index"`
}

// String returns "source:index".
func (o Origin) String() string { return o.Source + ":" + strconv.FormatInt(o.Index, 10) }

// Verifier checks the integrity links of events given in any order, from
// any number of runs, and reports per run what is complete and what is
// missing, duplicated or tampered with. It holds about 200 bytes per event
// until Report. A Verifier is not safe for concurrent use.
type Verifier struct {
	cfg     VerifierConfig
	keyID   string
	c       canonicalizer
	cap     captured
	canon   []byte
	runs    map[string]*runState
	uids    map[string]ref
	sources []string
	srcIdx  map[string]int32

	events         int64
	malformed      []Malformed
	malformedCount int64
}

// entry is what the verifier keeps of one event.
type entry struct {
	seq      int64
	count    int64
	idx      int64 // origin index
	src      int32 // origin source
	final    bool
	computed [32]byte // sha256 of the canonical form without hash and sig
	stated   [32]byte // the link's hash
	prev     [32]byte
	uid      string
	sig      string
	keyID    string
}

func (e *entry) same(o *entry) bool {
	return e.seq == o.seq && e.computed == o.computed && e.stated == o.stated && e.sig == o.sig
}

type ref struct {
	run *runState
	i   int
}

type runState struct {
	id         string
	entries    []entry
	copies     int64
	maxArrived int64
	problems   []Problem // found while adding
	notes      []Problem
	omitted    int
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.MaxProblems <= 0 {
		cfg.MaxProblems = 100
	}
	v := &Verifier{cfg: cfg, runs: map[string]*runState{}, uids: map[string]ref{}, srcIdx: map[string]int32{}}
	if cfg.PublicKey != nil {
		v.keyID = KeyID(cfg.PublicKey)
	}
	return v
}

func (v *Verifier) source(s string) int32 {
	if n := len(v.sources); n > 0 && v.sources[n-1] == s {
		return int32(n - 1) // the common case: the same file or stream as before
	}
	if i, ok := v.srcIdx[s]; ok {
		return i
	}
	i := int32(len(v.sources))
	v.sources = append(v.sources, s)
	v.srcIdx[s] = i
	return i
}

func (v *Verifier) origin(e *entry) Origin { return Origin{v.sources[e.src], e.idx} }

func (v *Verifier) run(id []byte) *runState {
	r := v.runs[string(id)] // no allocation for the lookup
	if r == nil {
		r = &runState{id: string(id)}
		v.runs[r.id] = r
	}
	return r
}

func (v *Verifier) addMalformed(o Origin, reason string) {
	v.malformedCount++
	if len(v.malformed) < v.cfg.MaxProblems {
		v.malformed = append(v.malformed, Malformed{At: o, Reason: reason})
	}
}

func (v *Verifier) problem(r *runState, p Problem) {
	if len(r.problems) >= v.cfg.MaxProblems {
		r.omitted++
		return
	}
	r.problems = append(r.problems, p)
}

// Add checks one encoded event read at o. Whatever is wrong with it ends
// up in the report; Add never fails. It does not retain data.
func (v *Verifier) Add(data []byte, o Origin) {
	v.events++
	v.cap.reset()
	canon, err := v.c.canonical(v.canon[:0], data, true, &v.cap)
	if err != nil {
		v.addMalformed(o, err.Error())
		return
	}
	v.canon = canon
	// The runs are read as bytes in v.cap: no allocation but the run's
	// first.
	mdRun, _ := v.cap.bytes(v.cap.md[mRun])
	uid, _ := v.cap.str(v.cap.md[mUID])
	mdSeq, hasSeq := v.cap.int(v.cap.md[mSeq])
	link, err := v.cap.parseLink(false)
	linkRun, _ := v.cap.runBytes()
	runID := linkRun
	if len(runID) == 0 {
		runID = mdRun
	}
	if len(runID) == 0 {
		reason := "no integrity link and no metadata.correlation_uid"
		if err != nil && !errors.Is(err, ErrNoLink) {
			reason = err.Error()
		}
		v.addMalformed(o, reason)
		return
	}
	r := v.run(runID)
	seq := link.Seq
	if seq == 0 {
		seq = mdSeq
	}
	if err != nil {
		kind, detail := KindBadLink, err.Error()
		if errors.Is(err, ErrNoLink) {
			kind, detail = KindUnchained, "event without integrity data (unmapped."+LinkMember+")"
		}
		v.problem(r, Problem{Kind: kind, Seq: seq, UID: uid, At: []Origin{o}, Detail: detail})
		return
	}
	if !bytes.Equal(mdRun, linkRun) {
		v.problem(r, Problem{Kind: KindBadLink, Seq: seq, UID: uid, At: []Origin{o},
			Detail: "link run " + strconv.Quote(string(linkRun)) + " but metadata.correlation_uid " + strconv.Quote(string(mdRun))})
	}
	if !hasSeq || mdSeq != link.Seq {
		v.problem(r, Problem{Kind: KindBadLink, Seq: seq, UID: uid, At: []Origin{o},
			Detail: "link seq " + strconv.FormatInt(link.Seq, 10) + " but metadata.sequence " + describe(&v.cap, v.cap.md[mSeq])})
	}
	e := entry{
		seq: seq, count: link.Count, final: link.Final, idx: o.Index, src: v.source(o.Source),
		computed: sha256.Sum256(canon), stated: v.cap.hash, prev: v.cap.prev,
		uid: uid, sig: link.Sig, keyID: link.KeyID,
	}
	if uid != "" {
		if prev, ok := v.uids[uid]; ok {
			pe := &prev.run.entries[prev.i]
			if pe.same(&e) {
				r.copies++
				return
			}
			v.problem(r, Problem{Kind: KindConflict, Seq: seq, UID: uid, At: []Origin{v.origin(pe), o},
				Detail: "two different events with the same metadata.uid (seq " + strconv.FormatInt(pe.seq, 10) +
					" and seq " + strconv.FormatInt(seq, 10) + "): one was altered"})
		} else {
			v.uids[uid] = ref{r, len(r.entries)}
		}
	}
	if seq < r.maxArrived {
		p := Problem{Kind: KindOutOfOrder, Seq: seq, UID: uid, At: []Origin{o},
			Detail: "seq " + strconv.FormatInt(seq, 10) + " arrived after seq " + strconv.FormatInt(r.maxArrived, 10)}
		if v.cfg.StrictOrder {
			v.problem(r, p)
		} else if len(r.notes) < v.cfg.MaxProblems {
			r.notes = append(r.notes, p)
		}
	}
	r.maxArrived = max(r.maxArrived, seq)
	r.entries = append(r.entries, e)
}
