package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/schema/jsonschema"
)

// maxDocument bounds a whole-file JSON document or array; NDJSON is read a
// line at a time, each line bounded by the validator's event limit.
const maxDocument = 256 << 20

// maxLine is the longest NDJSON line read; longer lines are reported as
// oversized and skipped without being held in memory.
const maxLine = 1<<20 + 1

func runValidate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "validate", "[--engine generated|jsonschema] [FILE...|-]")
	engine := fs.String("engine", "generated", "validator: generated (fast, all OCSF rules) or jsonschema (gojsonschema over the JSON Schema documents; cannot check the semantic rules)")
	quiet := fs.Bool("q", false, "print only the summary line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var check func([]byte) error
	switch *engine {
	case "generated":
		check = schema.Validate
	case "jsonschema":
		ref, err := jsonschema.New()
		if err != nil {
			return err
		}
		check = ref.Validate
	default:
		return usagef("validate: unknown engine %q (generated or jsonschema)", *engine)
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	v := &validation{check: check, out: e.stdout, quiet: *quiet}
	unusable := false
	for _, name := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := v.file(e, name); err != nil {
			fmt.Fprintf(e.stdout, "%s: %v\n", name, err)
			unusable = true
		}
	}
	fmt.Fprintf(e.stdout, "%d passed, %d failed\n", v.passed, v.failed)
	switch {
	case unusable:
		return &exitError{exitUsage}
	case v.failed > 0:
		return &exitError{exitFailure}
	}
	return nil
}

type validation struct {
	check          func([]byte) error
	out            io.Writer
	quiet          bool
	passed, failed int
}

func (v *validation) report(name string, line int, err error) {
	if err == nil {
		v.passed++
		return
	}
	v.failed++
	if !v.quiet {
		fmt.Fprintf(v.out, "%s:%d: %v\n", name, line, err)
	}
}

// errUnusable marks input that cannot be read as events at all.
var errUnusable = errors.New("unusable input")

func (v *validation) file(e *env, name string) error {
	var r io.Reader
	display := name
	if name == "-" {
		r, display = e.stdin, "<stdin>"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(8 << 10)
	if bytes.IndexByte(head, 0) >= 0 {
		return fmt.Errorf("%w: binary data (a NUL byte in the first %d bytes), not JSON", errUnusable, len(head))
	}
	first := firstByte(head)
	switch {
	case first == 0:
		return fmt.Errorf("%w: empty", errUnusable)
	case first == '[':
		return v.array(display, br)
	case first == '{' && !firstLineComplete(head):
		return v.document(display, br)
	}
	return v.ndjson(display, br)
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}

// firstLineComplete reports whether the first non-blank line of head is a
// complete JSON value: then the input is NDJSON, else one JSON document.
func firstLineComplete(head []byte) bool {
	for len(head) > 0 {
		line, rest, found := bytes.Cut(head, []byte("\n"))
		if len(bytes.TrimSpace(line)) > 0 {
			return found && json.Valid(line) || (!found && json.Valid(line))
		}
		head = rest
	}
	return false
}

func (v *validation) ndjson(name string, br *bufio.Reader) error {
	line := 0
	var buf []byte
	for {
		line++
		chunk, err := br.ReadSlice('\n')
		buf = append(buf[:0], chunk...)
		oversized := false
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			if len(buf) < maxLine {
				buf = append(buf, chunk...)
			} else {
				oversized = true
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		trimmed := bytes.TrimSpace(buf)
		switch {
		case oversized || len(buf) > maxLine:
			v.report(name, line, fmt.Errorf("line longer than %d bytes, not validated", maxLine-1))
		case len(trimmed) > 0:
			v.report(name, line, v.check(trimmed))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func (v *validation) document(name string, br *bufio.Reader) error {
	b, err := io.ReadAll(io.LimitReader(br, maxDocument+1))
	if err != nil {
		return err
	}
	if len(b) > maxDocument {
		return fmt.Errorf("%w: a JSON document larger than %d bytes", errUnusable, maxDocument)
	}
	v.report(name, 1+bytes.Count(b[:len(b)-len(bytes.TrimLeft(b, " \t\r\n"))], []byte("\n")), v.check(bytes.TrimSpace(b)))
	return nil
}

func (v *validation) array(name string, br *bufio.Reader) error {
	b, err := io.ReadAll(io.LimitReader(br, maxDocument+1))
	if err != nil {
		return err
	}
	if len(b) > maxDocument {
		return fmt.Errorf("%w: a JSON array larger than %d bytes", errUnusable, maxDocument)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil {
		return fmt.Errorf("%w: %v", errUnusable, err)
	}
	for d.More() {
		var raw json.RawMessage
		start := d.InputOffset()
		if err := d.Decode(&raw); err != nil {
			line := 1 + bytes.Count(b[:start], []byte("\n"))
			v.report(name, line, fmt.Errorf("array element is not valid JSON: %v", err))
			return nil
		}
		// InputOffset is just before the element's leading separator and space.
		off := int(start)
		for off < len(b) && (b[off] == ',' || b[off] == ' ' || b[off] == '\n' || b[off] == '\r' || b[off] == '\t') {
			off++
		}
		v.report(name, 1+bytes.Count(b[:off], []byte("\n")), v.check(raw))
	}
	return nil
}
