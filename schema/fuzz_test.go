package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/schema"
)

// FuzzValidate checks the validator's contract on arbitrary bytes: it never
// panics, every rejection is a *ValidationError with a JSON Pointer and a
// reason, and every accepted input is well-formed JSON that stays valid
// when re-serialised with other key order and spacing (as a SIEM would).
// Seeds: testdata/fuzz/FuzzValidate plus the event corpus.
func FuzzValidate(f *testing.F) {
	for _, dir := range []string{"../testdata/bench", "../testdata/events/valid/*", "../testdata/events/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := schema.Validate(data)
		if err != nil {
			var ve *schema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *ValidationError: %v", err, err)
			}
			if ve.Reason == "" || (ve.Path != "" && !strings.HasPrefix(ve.Path, "/")) || ve.Kind == 0 {
				t.Fatalf("incomplete error: %#v", ve)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted input that encoding/json rejects: %q", data)
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		again, err := json.MarshalIndent(v, "", "   ")
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(again); err != nil {
			t.Fatalf("valid event rejected after re-serialisation: %v\n%s", err, again)
		}
	})
}
