package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// finding is what a test expects of a run report: its status and the
// kind and seq of each problem.
type finding struct {
	Status   Status
	Missing  string   // e.g. "5" or "3-4,9"
	Problems []string // "kind@seq"
	Notes    []string
	Sig      SigStatus
}

func summarize(r RunReport) finding {
	f := finding{Status: r.Status, Sig: r.Signature}
	var m []string
	for _, x := range r.Missing {
		m = append(m, x.String())
	}
	f.Missing = strings.Join(m, ",")
	for _, p := range r.Problems {
		f.Problems = append(f.Problems, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	for _, p := range r.Notes {
		f.Notes = append(f.Notes, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	return f
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 10
	signer := testSigner(t)
	setMessage := func(m map[string]any) { m["message"] = "nothing to see here" }
	tests := []struct {
		name   string
		key    bool
		strict bool
		mutate func(t *testing.T, ev [][]byte) [][]byte
		want   finding
	}{
		{"intact, signed and checked", true, false, nil,
			finding{Status: StatusComplete, Sig: SigValid}},
		{"intact, signature not checked", false, false, nil,
			finding{Status: StatusComplete, Sig: SigNotChecked}},
		{"delete one event", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			return slices.Delete(ev, 4, 5)
		}, finding{Status: StatusIncomplete, Missing: "5", Sig: SigValid}},
		{"change one field", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[6] = edit(t, ev[6], false, setMessage)
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"modified@7"}, Sig: SigValid}},
		{"change one field and re-hash it", false, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[6] = edit(t, ev[6], true, setMessage)
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"broken_chain@8"}, Sig: SigNotChecked}},
		{"reorder two events in the file", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[3], ev[4] = ev[4], ev[3]
			return ev
		}, finding{Status: StatusComplete, Notes: []string{"out_of_order@4"}, Sig: SigValid}},
		{"reorder two events in the file, strict order", true, true, func(t *testing.T, ev [][]byte) [][]byte {
			ev[3], ev[4] = ev[4], ev[3]
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"out_of_order@4"}, Sig: SigValid}},
		{"renumber two events (swap seq, re-hash both)", false, false, func(t *testing.T, ev [][]byte) [][]byte {
			renumber := func(seq int) func(m map[string]any) {
				return func(m map[string]any) {
					m["metadata"].(map[string]any)["sequence"] = json.Number(fmt.Sprint(seq))
					linkOf(m)["seq"] = json.Number(fmt.Sprint(seq))
				}
			}
			a, b := edit(t, ev[3], true, renumber(5)), edit(t, ev[4], true, renumber(4))
			ev[3], ev[4] = b, a
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"broken_chain@4", "reordered@5", "broken_chain@6"}, Sig: SigNotChecked}},
		{"duplicate one event", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			return slices.Insert(ev, 7, ev[2])
		}, finding{Status: StatusComplete, Sig: SigValid}},
		{"duplicate uid with different content", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			return slices.Insert(ev, 7, edit(t, ev[2], false, setMessage))
		}, finding{Status: StatusTampered, Problems: []string{"conflict@3"}, Notes: []string{"out_of_order@3"}, Sig: SigValid}},
		{"another event claims a sequence number", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			forged := edit(t, ev[2], true, func(m map[string]any) {
				m["metadata"].(map[string]any)["uid"] = "019ac6e2-dead-7000-8000-000000000000"
				setMessage(m)
			})
			return append(ev, forged)
		}, finding{Status: StatusTampered, Problems: []string{"conflict@3"}, Notes: []string{"out_of_order@3"}, Sig: SigValid}},
		{"truncate the run", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			return ev[:7]
		}, finding{Status: StatusIncomplete, Problems: []string{"no_final@7"}, Sig: SigNoFinal}},
		{"forge the final count", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[9] = edit(t, ev[9], true, func(m map[string]any) { linkOf(m)["count"] = json.Number("12") })
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"forged_count@10", "bad_signature@10"}, Sig: SigInvalid}},
		{"truncate and forge a final event, signature stripped", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev = ev[:7]
			ev[6] = edit(t, ev[6], true, func(m map[string]any) {
				l := linkOf(m)
				l["final"], l["count"] = true, json.Number("7")
			})
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"unsigned@7"}, Sig: SigUnsigned}},
		{"truncate and forge a final event, old signature kept", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			sig := linkOf(decodeEvent(t, ev[9]))["sig"]
			ev = ev[:7]
			ev[6] = edit(t, ev[6], true, func(m map[string]any) {
				l := linkOf(m)
				l["final"], l["count"], l["key_id"], l["sig"] = true, json.Number("7"), signer.KeyID(), sig
			})
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"bad_signature@7"}, Sig: SigInvalid}},
		{"final event moved earlier, later events kept", false, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[7] = edit(t, ev[7], true, func(m map[string]any) {
				l := linkOf(m)
				l["final"], l["count"] = true, json.Number("8")
			})
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"broken_chain@9", "forged_count@10"}, Sig: SigNotChecked}},
		{"run extended after its final event", false, false, func(t *testing.T, ev [][]byte) [][]byte {
			head := linkOf(decodeEvent(t, ev[9]))["hash"]
			extra := edit(t, ev[8], true, func(m map[string]any) {
				m["metadata"].(map[string]any)["sequence"] = json.Number("11")
				m["metadata"].(map[string]any)["uid"] = "019ac6e2-f00d-7000-8000-000000000000"
				l := linkOf(m)
				l["seq"], l["prev"] = json.Number("11"), head
			})
			return append(ev, extra)
		}, finding{Status: StatusTampered, Problems: []string{"after_final@11"}, Sig: SigNotChecked}},
		{"event without integrity data injected", true, false, func(t *testing.T, ev [][]byte) [][]byte {
			return append(ev, edit(t, ev[1], false, func(m map[string]any) {
				delete(m, "unmapped")
				m["metadata"].(map[string]any)["uid"] = "019ac6e2-beef-7000-8000-000000000000"
			}))
		}, finding{Status: StatusTampered, Problems: []string{"unchained@2"}, Sig: SigValid}},
		{"link disagrees with metadata", false, false, func(t *testing.T, ev [][]byte) [][]byte {
			ev[2] = edit(t, ev[2], true, func(m map[string]any) { m["metadata"].(map[string]any)["sequence"] = json.Number("30") })
			return ev
		}, finding{Status: StatusTampered, Problems: []string{"bad_link@3", "broken_chain@4"}, Sig: SigNotChecked}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := sealRun(t, "run-t", n, signer)
			other := sealRun(t, "run-other", 4, signer)
			if tt.mutate != nil {
				events = tt.mutate(t, events)
			}
			// Interleave an intact run: the report must name the right one.
			all := append(slices.Clone(events[:2]), other...)
			all = append(all, events[2:]...)
			cfg := VerifierConfig{StrictOrder: tt.strict}
			if tt.key {
				cfg.PublicKey = signer.PublicKey()
			}
			rep := verify(all, cfg)
			if len(rep.Runs) != 2 || rep.Runs[0].Run != "run-other" || rep.Runs[1].Run != "run-t" {
				t.Fatalf("runs = %+v, want run-other and run-t", rep.Runs)
			}
			if !rep.Runs[0].OK() {
				t.Errorf("the intact run failed: %+v", rep.Runs[0])
			}
			got := summarize(rep.Runs[1])
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("run-t (-want +got):\n%s\nreport: %+v", diff, rep.Runs[1])
			}
			if rep.OK != (tt.want.Status == StatusComplete) {
				t.Errorf("report OK = %v with run-t %s", rep.OK, got.Status)
			}
		})
	}
}

func TestVerifyDuplicatesAndOrigins(t *testing.T) {
	events := sealRun(t, "run-d", 5, nil)
	events = append(events, events[1], events[1])
	events[3] = edit(t, events[3], false, func(m map[string]any) { m["message"] = "x" })
	rep := verify(events, VerifierConfig{})
	r := rep.Runs[0]
	if r.Duplicates != 2 || r.Events != 5 || !r.Final || r.Count != 5 {
		t.Errorf("report = %+v, want 5 events, 2 duplicates, final count 5", r)
	}
	if len(r.Problems) != 1 || r.Problems[0].At[0] != (Origin{"trail.ndjson", 4}) {
		t.Errorf("problems = %+v, want one at trail.ndjson:4", r.Problems)
	}
	if got := r.Problems[0].At[0].String(); got != "trail.ndjson:4" {
		t.Errorf("Origin.String() = %q", got)
	}
}

func TestVerifyMalformed(t *testing.T) {
	good := sealRun(t, "run-x", 2, nil)
	rep := verify([][]byte{[]byte(`{"a":`), good[0], []byte(`{"class_uid":1}`), good[1]}, VerifierConfig{})
	if rep.MalformedCount != 2 || rep.OK || len(rep.Runs) != 1 || !rep.Runs[0].OK() {
		t.Errorf("report = %+v, want 2 malformed inputs and one complete run", rep)
	}
	if rep.Malformed[0].At.Index != 1 || rep.Malformed[1].At.Index != 3 {
		t.Errorf("malformed = %+v, want lines 1 and 3", rep.Malformed)
	}
}

func TestVerifyOtherKey(t *testing.T) {
	events := sealRun(t, "run-k", 3, testSigner(t))
	other, _ := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	rep := verify(events, VerifierConfig{PublicKey: other.PublicKey()})
	got := summarize(rep.Runs[0])
	want := finding{Status: StatusTampered, Problems: []string{"other_key@3"}, Sig: SigOtherKey}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// An exported file re-serialised by a SIEM, with other key order,
// whitespace, string escapes and number spellings, still verifies.
func TestVerifyReserialised(t *testing.T) {
	signer := testSigner(t)
	events := sealRun(t, "run-siem", 12, signer)
	r := rand.New(rand.NewPCG(3, 4))
	var file bytes.Buffer
	for _, ev := range events {
		m := decodeEvent(t, ev)
		reserialise(&file, m, r, 0)
		file.WriteString("\n\n")
	}
	lines := bytes.Split(file.Bytes(), []byte("\n\n"))
	var reser [][]byte
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) > 0 {
			reser = append(reser, l)
		}
	}
	if bytes.Equal(reser[0], events[0]) {
		t.Fatal("re-serialisation left the event unchanged")
	}
	rep := verify(reser, VerifierConfig{PublicKey: signer.PublicKey()})
	if !rep.OK || rep.Runs[0].Signature != SigValid || rep.Runs[0].Events != 12 {
		t.Fatalf("re-serialised run: %+v", rep.Runs)
	}
}

// reserialise writes v as JSON with shuffled members, random whitespace,
// some characters \u-escaped and integers spelled as floats.
func reserialise(w *bytes.Buffer, v any, r *rand.Rand, depth int) {
	ws := func() {
		w.WriteString([]string{"", " ", "\n" + strings.Repeat("  ", depth+1), "\t"}[r.IntN(4)])
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		w.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.WriteByte(',')
			}
			ws()
			reserialise(w, k, r, depth+1)
			ws()
			w.WriteByte(':')
			ws()
			reserialise(w, x[k], r, depth+1)
		}
		ws()
		w.WriteByte('}')
	case []any:
		w.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				w.WriteString(", ")
			}
			reserialise(w, e, r, depth+1)
		}
		w.WriteByte(']')
	case string:
		w.WriteByte('"')
		for _, c := range x {
			switch {
			case c == '"' || c == '\\':
				w.WriteByte('\\')
				w.WriteRune(c)
			case c == '/' && r.IntN(2) == 0:
				w.WriteString(`\/`)
			case c < 0x20 || r.IntN(5) == 0:
				fmt.Fprintf(w, `\u%04X`, c)
			default:
				w.WriteRune(c)
			}
		}
		w.WriteByte('"')
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") && len(s) > 1 && r.IntN(2) == 0 {
			s = s[:1] + "." + s[1:] + "E+" + fmt.Sprint(len(s)-1) // 1764263000123 -> 1.764263000123E+12
		} else if !strings.ContainsAny(s, ".eE") && r.IntN(2) == 0 {
			s += ".0"
		}
		w.WriteString(s)
	default:
		b, _ := json.Marshal(x)
		w.Write(b)
	}
}
