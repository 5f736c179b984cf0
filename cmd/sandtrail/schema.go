package main

import (
	"context"
	"fmt"

	"github.com/sandtrail/sandtrail/schema/jsonschema"
)

func runSchema(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "schema", "export DIR")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) != 2 || rest[0] != "export" {
		return usagef("usage: sandtrail schema export DIR")
	}
	if err := jsonschema.Export(rest[1]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d JSON Schema documents (draft-07) to %s\n", len(jsonschema.Names()), rest[1])
	return nil
}
