package schema_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/schema"
)

// TestEncodeRoundTrip decodes every valid corpus event into its generated
// type with encoding/json (which follows the struct tags) and encodes it
// again with the generated encoder: the result must be the same event and
// must start with class_uid, which the validator's fast path relies on.
func TestEncodeRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../testdata/events/valid/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			ClassUID int `json:"class_uid"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatal(err)
		}
		ev, ok := schema.NewEvent(head.ClassUID)
		if !ok {
			t.Fatalf("%s: no type for class %d", p, head.ClassUID)
		}
		if err := json.Unmarshal(b, ev); err != nil {
			t.Fatalf("%s: decode: %v", p, err)
		}
		out, err := schema.AppendJSON(nil, ev)
		if err != nil {
			t.Fatalf("%s: encode: %v", p, err)
		}
		if !strings.HasPrefix(string(out), `{"class_uid":`) {
			t.Errorf("%s: encoding does not start with class_uid: %.40s", p, out)
		}
		if err := schema.Validate(out); err != nil {
			t.Errorf("%s: re-encoded event invalid: %v", p, err)
		}
		var got, want any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v\n%s", p, err, out)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: round trip differs (-golden +encoded):\n%s", p, d)
		}
	}
}

// TestEncodeStringsAndFloats: the generated encoder's strings and floats
// decode to the same values as encoding/json's.
func TestEncodeStringsAndFloats(t *testing.T) {
	strs := []string{"", "plain", `quote " backslash \ slash /`, "tab\tnl\ncr\r", "\x00\x01\x1f", "<html>&amp;",
		"é ü 漢字 😀", "bad \xff utf8 \xc0\xaf", "\u2028\u2029", strings.Repeat("x", 1000)}
	for _, s := range strs {
		e := schema.NewApplicationLifecycle(schema.ApplicationLifecycleActivityIDStart)
		e.Message = s
		out, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Message string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, out)
		}
		var want string
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got.Message != want {
			t.Errorf("message %q decodes as %q, want %q", s, got.Message, want)
		}
	}
	for _, f := range []float64{0, 1, -1.5, 1e-7, 1e21, 123456789.125, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		c := schema.CVSS{BaseScore: f, Version: "3.1"}
		got, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{"base_score": f, "version": "3.1"})
		if string(got) != string(want) {
			t.Errorf("float %v encodes as %s, encoding/json as %s", f, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		e := schema.NewDetectionFinding(schema.DetectionFindingActivityIDCreate)
		e.Evidences = []schema.Evidences{{Data: map[string]any{"f": f}}}
		if _, err := e.AppendJSON(nil); err == nil {
			t.Errorf("encoding %v succeeded", f)
		}
	}
}

// TestEncodeFreeForm: the reflection-free path for free-form values
// produces what encoding/json produces.
func TestEncodeFreeForm(t *testing.T) {
	values := []any{
		map[string]any{"b": 1, "a": []any{"x", 2.5, true, nil, map[string]any{"z": int64(-3)}}, "c": map[string]string{"k2": "v", "k1": "w"}},
		[]string{"p", "q"}, "plain", 7, uint32(9), false, nil,
		map[string]any{"nested": map[string]any{"deep": []any{[]string{"u"}, uint64(1 << 60)}}},
		struct {
			X int `json:"x"`
		}{4}, // falls back to encoding/json
	}
	for _, v := range values {
		e := schema.NewDetectionFinding(schema.DetectionFindingActivityIDCreate)
		e.Evidences = []schema.Evidences{{Data: v}}
		out, err := e.AppendJSON(nil)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		var got struct {
			Evidences []struct {
				Data json.RawMessage `json:"data"`
			} `json:"evidences"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%#v: %v\n%s", v, err, out)
		}
		want, _ := json.Marshal(v)
		if v == nil {
			if len(got.Evidences) != 1 || got.Evidences[0].Data != nil {
				t.Errorf("nil data encodes as %s, want it omitted", out)
			}
			continue
		}
		if string(got.Evidences[0].Data) != string(want) {
			t.Errorf("%#v encodes as %s, encoding/json as %s", v, got.Evidences[0].Data, want)
		}
	}
}
