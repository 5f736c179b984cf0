// Package jsonschema ships the JSON Schema documents generated for
// sandtrail's OCSF classes and a reference validator built on them with
// github.com/xeipuuv/gojsonschema.
//
// The reference validator is the slow, generic path: it exists so that the
// generated validator in package schema can be checked against an
// independent engine (the differential test), and so users can ask for it
// (`sandtrail validate --engine jsonschema`). The documents are draft-07 and
// can be used with any JSON Schema tool (`sandtrail schema export DIR`).
//
// JSON Schema cannot state every OCSF rule; what it cannot (type_uid
// arithmetic, caption siblings, observable paths, declared profiles,
// duplicate keys) only package schema checks.
package jsonschema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/xeipuuv/gojsonschema"
)

//go:embed *.json
var files embed.FS

// Names returns the class names that have a document, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// Document returns the JSON Schema document of a class, by class name
// (e.g. "compliance_finding").
func Document(class string) ([]byte, error) {
	b, err := files.ReadFile(class + ".json")
	if err != nil {
		return nil, fmt.Errorf("jsonschema: no document for class %q", class)
	}
	return b, nil
}

// Export writes every document into dir as <class>.json.
func Export(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export schemas: %w", err)
	}
	for _, n := range Names() {
		b, _ := files.ReadFile(n + ".json")
		if err := os.WriteFile(filepath.Join(dir, n+".json"), b, 0o644); err != nil {
			return fmt.Errorf("export schemas: %w", err)
		}
	}
	return nil
}

// Validator validates events with gojsonschema against the documents.
// Build one with New; it is safe for concurrent use.
type Validator struct {
	byUID map[int64]*compiled
}

type compiled struct {
	name   string
	schema *gojsonschema.Schema
}

// New compiles every document.
func New() (*Validator, error) {
	v := &Validator{byUID: map[int64]*compiled{}}
	for _, n := range Names() {
		b, _ := files.ReadFile(n + ".json")
		var head struct {
			Properties struct {
				ClassUID struct {
					Const int64 `json:"const"`
				} `json:"class_uid"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("jsonschema: %s: %w", n, err)
		}
		s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(b))
		if err != nil {
			return nil, fmt.Errorf("jsonschema: compile %s: %w", n, err)
		}
		v.byUID[head.Properties.ClassUID.Const] = &compiled{name: n, schema: s}
	}
	return v, nil
}

// ErrUnknownClass is returned for an event whose class_uid has no document.
var ErrUnknownClass = errors.New("jsonschema: unknown class")

// Error lists every violation gojsonschema found.
type Error struct {
	Class      string
	Violations []string // "field: description"
}

func (e *Error) Error() string {
	return e.Class + ": " + strings.Join(e.Violations, "; ")
}

// Validate checks one encoded event.
func (v *Validator) Validate(data []byte) error {
	var head struct {
		ClassUID *json.Number `json:"class_uid"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&head); err != nil {
		return fmt.Errorf("jsonschema: decode: %w", err)
	}
	if head.ClassUID == nil {
		return &Error{Violations: []string{"class_uid: required"}}
	}
	uid, err := head.ClassUID.Int64()
	if err != nil {
		return fmt.Errorf("jsonschema: class_uid %s: %w", head.ClassUID.String(), ErrUnknownClass)
	}
	c := v.byUID[uid]
	if c == nil {
		return fmt.Errorf("jsonschema: class_uid %d: %w", uid, ErrUnknownClass)
	}
	res, err := c.schema.Validate(gojsonschema.NewBytesLoader(data))
	if err != nil {
		return fmt.Errorf("jsonschema: %s: %w", c.name, err)
	}
	if res.Valid() {
		return nil
	}
	e := &Error{Class: c.name}
	for _, r := range res.Errors() {
		e.Violations = append(e.Violations, r.Field()+": "+r.Description())
	}
	return e
}
