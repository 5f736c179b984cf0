package jsonschema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	santhosh "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/xeipuuv/gojsonschema"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/schema/jsonschema"
)

// BenchmarkValidate compares, on the same events in one run, the generated
// validator with gojsonschema (the baseline this design started from),
// santhosh-tekuri/jsonschema/v6, and encoding/json decoding into any (the
// floor of any decode-then-validate validator). internal/benchratio turns
// the output into the ratio table of docs/BENCHMARKS.md.
func BenchmarkValidate(b *testing.B) {
	doc, err := jsonschema.Document("compliance_finding")
	if err != nil {
		b.Fatal(err)
	}
	gs, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(doc))
	if err != nil {
		b.Fatal(err)
	}
	c := santhosh.NewCompiler()
	sdoc, err := santhosh.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.AddResource("compliance_finding.json", sdoc); err != nil {
		b.Fatal(err)
	}
	ss, err := c.Compile("compliance_finding.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, ev := range []struct {
		name  string
		file  string
		valid bool
	}{
		{"valid-1.8KB", "compliance_1k7.json", true},
		{"valid-4.8KB-evidences", "compliance_5k.json", true},
		{"invalid-1.8KB", "compliance_invalid.json", false},
	} {
		data, err := os.ReadFile(filepath.Join("../../testdata/bench", ev.file))
		if err != nil {
			b.Fatal(err)
		}
		data = bytes.TrimSpace(data)
		check := func(b *testing.B, err error) {
			if (err == nil) != ev.valid {
				b.Fatalf("valid=%v, got %v", ev.valid, err)
			}
		}
		b.Run(ev.name+"/generated", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			check(b, schema.Validate(data))
			for b.Loop() {
				_ = schema.Validate(data)
			}
		})
		b.Run(ev.name+"/gojsonschema", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			valid := func() error {
				r, err := gs.Validate(gojsonschema.NewBytesLoader(data))
				if err != nil {
					return err
				}
				if !r.Valid() {
					return os.ErrInvalid
				}
				return nil
			}
			check(b, valid())
			for b.Loop() {
				_ = valid()
			}
		})
		b.Run(ev.name+"/santhosh-v6", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			valid := func() error {
				inst, err := santhosh.UnmarshalJSON(bytes.NewReader(data))
				if err != nil {
					return err
				}
				return ss.Validate(inst)
			}
			check(b, valid())
			for b.Loop() {
				_ = valid()
			}
		})
		b.Run(ev.name+"/json-unmarshal-any", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := json.Unmarshal(data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
