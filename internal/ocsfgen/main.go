// Command ocsfgen generates sandtrail's typed OCSF events, JSON Schemas and
// validator rule tables from the compiled OCSF schema.
//
// Usage (from go generate in ./schema):
//
//	go run ../internal/ocsfgen -in COMPILED.json -out .
//
// It writes zz_enums.go, zz_objects.go, zz_classes.go, zz_rules.go, zz_encode.go and
// jsonschema/<class>.json. The outputs are committed: nothing at build or
// test time needs the compiled schema.
package main

import (
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
)

func main() {
	in := flag.String("in", "", "compiled OCSF schema (ocsf-schema-1.8.0.compiled.json)")
	out := flag.String("out", ".", "output directory (the schema package)")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ocsfgen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		return fmt.Errorf("-in is required")
	}
	m, err := loadModel(in)
	if err != nil {
		return err
	}
	files := map[string]string{
		"zz_enums.go":   genEnums(m),
		"zz_objects.go": genObjects(m),
		"zz_classes.go": genClasses(m),
		"zz_rules.go":   genRules(m),
		"zz_encode.go":  genEncoders(m),
	}
	for name, src := range files {
		formatted, err := format.Source([]byte(src))
		if err != nil {
			_ = os.WriteFile(filepath.Join(out, name+".broken"), []byte(src), 0o644)
			return fmt.Errorf("format %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), formatted, 0o644); err != nil {
			return err
		}
	}
	dir := filepath.Join(out, "jsonschema")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range m.Classes {
		b, err := genJSONSchema(m, c)
		if err != nil {
			return fmt.Errorf("json schema %s: %w", c.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
