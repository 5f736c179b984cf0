package main

import (
	"context"
	"fmt"
)

func runPolicy(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "policy", "check FILE... | show [FILE]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("usage: sandtrail policy check FILE... | sandtrail policy show [FILE]")
	}
	switch rest[0] {
	case "check":
		if len(rest) < 2 {
			return usagef("usage: sandtrail policy check FILE...")
		}
		failed := 0
		for _, f := range rest[1:] {
			p, err := loadPolicy(f)
			if err != nil {
				fmt.Fprintln(e.stdout, err)
				failed++
				continue
			}
			fmt.Fprintf(e.stdout, "%s: ok: policy %q version %q, uid %s\n", f, p.Name, p.Version, p.UID())
		}
		if failed > 0 {
			return &exitError{exitFailure}
		}
		return nil
	case "show":
		file := ""
		if len(rest) > 1 {
			file = rest[1]
		}
		p, err := loadPolicy(file)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return &exitError{exitFailure}
		}
		fmt.Fprintf(e.stdout, "# effective policy, defaults filled in; uid %s\n", p.UID())
		_, err = e.stdout.Write(p.YAML())
		return err
	}
	return usagef("policy: unknown action %q (check or show)", rest[0])
}
