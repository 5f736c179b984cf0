package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks Parse's contract on any input: it never panics; every
// error is an *Error or *Errors whose entries all name a file and a line;
// every accepted policy is valid and survives YAML() and Parse again with
// the same UID. Seeds: the files in testdata and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Default().YAML())
	f.Add([]byte("name: x\ncontrols:\n  landlock: {read_only: [/usr], execute: [/usr/bin], bind_tcp: [80, 80]}\n"))
	f.Add([]byte(`{"name": "x", "controls": {"seccomp": {"profile": "profiles/small.json", "default_action": "SCMP_ACT_LOG"}}}`))

	const name = "testdata/fuzz.yaml" // profile paths resolve in testdata
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(name, data)
		if err != nil {
			var one *Error
			var list *Errors
			switch {
			case errors.As(err, &list):
				if len(*list) < 2 {
					t.Fatalf("*Errors with %d entries", len(*list))
				}
			case !errors.As(err, &one):
				t.Fatalf("error %T is neither *Error nor *Errors: %v", err, err)
			}
			for _, e := range flatten(err) {
				if e.File == "" || e.Line < 1 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("incomplete error %#v", e)
				}
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted a policy that Validate rejects: %v\n%s", err, data)
		}
		again, err := Parse(name, p.YAML())
		if err != nil {
			t.Fatalf("Parse(YAML()) = %v\n%s", err, p.YAML())
		}
		if again.UID() != p.UID() {
			t.Fatalf("UID changed through YAML():\n%s\n%s", p.Canonical(), again.Canonical())
		}
	})
}
