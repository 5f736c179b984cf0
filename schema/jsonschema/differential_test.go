package jsonschema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/schema/jsonschema"
)

// The differential test holds the generated validator (package schema) and
// the generated JSON Schema documents, run by gojsonschema, to one truth.
// They may disagree only where the generated validator rejects an event
// for a rule JSON Schema cannot state (schema.KindSemantic); everything
// else is a bug in the generator or in one of the engines.

const corpusDir = "../../testdata/events"

func loadCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	if len(out) == 0 {
		t.Fatalf("no corpus under %s", corpusDir)
	}
	return out
}

func newRef(t testing.TB) *jsonschema.Validator {
	t.Helper()
	v, err := jsonschema.New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// compare returns a description of an unexplained disagreement, or "".
func compare(ref *jsonschema.Validator, data []byte) string {
	got := schema.Validate(data)
	want := ref.Validate(data)
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil:
		return "generated validator accepts, gojsonschema rejects: " + want.Error()
	case want == nil:
		var ve *schema.ValidationError
		if errors.As(got, &ve) && ve.Kind == schema.KindSemantic {
			return ""
		}
		// gojsonschema decodes the first JSON value and ignores what follows;
		// bytes that are not exactly one JSON document are a syntax error.
		if errors.As(got, &ve) && ve.Kind == schema.KindSyntax && !json.Valid(data) {
			return ""
		}
		return "generated validator rejects (" + got.Error() + "), gojsonschema accepts"
	}
	return ""
}

func TestDifferentialCorpus(t *testing.T) {
	ref := newRef(t)
	corpus := loadCorpus(t)
	for _, p := range sortedKeys(corpus) {
		if d := compare(ref, corpus[p]); d != "" {
			t.Errorf("%s: %s", p, d)
		}
	}
}

func TestDifferentialMutations(t *testing.T) {
	ref := newRef(t)
	corpus := loadCorpus(t)
	n := 150
	if testing.Short() {
		n = 20
	}
	r := rand.New(rand.NewPCG(1, 2))
	var tried, disagreements, rejected int
	for _, p := range sortedKeys(corpus) {
		if !strings.Contains(p, "/valid/") {
			continue
		}
		for i := 0; i < n; i++ {
			m, ok := mutate(r, corpus[p])
			if !ok {
				continue
			}
			tried++
			if schema.Validate(m) != nil {
				rejected++
			}
			if d := compare(ref, m); d != "" {
				disagreements++
				if disagreements <= 20 {
					t.Errorf("%s mutation %d: %s\n%s", p, i, d, m)
				}
			}
		}
	}
	t.Logf("%d mutations, %d rejected, %d unexplained disagreements", tried, rejected, disagreements)
	if tried == 0 || rejected == 0 || rejected == tried {
		t.Fatalf("mutations did not exercise both outcomes: %d tried, %d rejected", tried, rejected)
	}
}

// FuzzDifferential feeds arbitrary bytes to both engines.
func FuzzDifferential(f *testing.F) {
	for _, b := range loadCorpus(f) {
		f.Add(b)
	}
	ref := newRef(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // gojsonschema's decoder and ours differ on what they report, not on acceptance
		}
		if d := compare(ref, data); d != "" {
			t.Fatal(d)
		}
	})
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mutate applies one random structural change to a JSON document.
func mutate(r *rand.Rand, data []byte) ([]byte, bool) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, false
	}
	type slot struct {
		parent any // map[string]any or []any
		key    string
		index  int
	}
	var slots []slot
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				slots = append(slots, slot{parent: x, key: k})
				walk(c)
			}
		case []any:
			for i, c := range x {
				slots = append(slots, slot{parent: x, index: i})
				walk(c)
			}
		}
	}
	walk(doc)
	if len(slots) == 0 {
		return nil, false
	}
	s := slots[r.IntN(len(slots))]
	get := func() any {
		if m, ok := s.parent.(map[string]any); ok {
			return m[s.key]
		}
		return s.parent.([]any)[s.index]
	}
	set := func(v any) {
		if m, ok := s.parent.(map[string]any); ok {
			m[s.key] = v
			return
		}
		s.parent.([]any)[s.index] = v
	}
	switch op := r.IntN(6); op {
	case 0:
		if m, ok := s.parent.(map[string]any); ok {
			delete(m, s.key)
		} else {
			set(randomValue(r))
		}
	case 1:
		if m, ok := s.parent.(map[string]any); ok {
			m["zz_unknown"] = randomValue(r)
		} else {
			set(randomValue(r))
		}
	case 2, 3:
		set(randomValue(r))
	default:
		set(nudge(r, get()))
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false
	}
	return out, true
}

var interestingStrings = []string{
	"", "x", "Unknown", "Other", "High", "Informational", "1.8.0", "1.7.0", "host", "cloud", "container",
	"0192f5c4-1c2b-7cde-8f00-112233445566", "0192f5c4-1c2b-7cde-8f00-11223344556", "not-a-uuid",
	"10.0.0.1", "1.2.3.400", "1x2x3x4", "::1", "fe80::1%eth0", "01.2.3.4", "aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee",
	"2026-11-27T17:00:00Z", "2026-11-27 17:00:00Z", "a@b.c", "a@b", "QUJD", "QUI=", "process.pid", "process.nope",
	"device.hostname", "Create", "Pass", "linux", strings.Repeat("z", 50),
}

func randomValue(r *rand.Rand) any {
	switch r.IntN(9) {
	case 0:
		return interestingStrings[r.IntN(len(interestingStrings))]
	case 1:
		return json.Number([]string{"0", "1", "2", "3", "4", "5", "6", "99", "-1", "100", "65536", "2147483648", "200301", "1.5", "5.0", "1e3"}[r.IntN(16)])
	case 2:
		return r.IntN(2) == 0
	case 3:
		return nil
	case 4:
		return map[string]any{}
	case 5:
		return []any{}
	case 6:
		return map[string]any{"name": "x", "uid": "y"}
	case 7:
		return []any{interestingStrings[r.IntN(len(interestingStrings))]}
	default:
		return json.Number("1764260000000")
	}
}

// nudge changes a value while keeping its JSON type where it can.
func nudge(r *rand.Rand, v any) any {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return json.Number("7")
		}
		switch r.IntN(4) {
		case 0:
			return json.Number(jsonInt(n + 1))
		case 1:
			return json.Number(jsonInt(-n))
		case 2:
			return json.Number("99")
		default:
			return json.Number(jsonInt(n*100 + 1))
		}
	case string:
		return interestingStrings[r.IntN(len(interestingStrings))]
	case bool:
		return !x
	case []any:
		if len(x) > 0 {
			return append(x, x[0])
		}
		return x
	}
	return randomValue(r)
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
