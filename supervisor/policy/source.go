package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds policy and profile files; real ones are a few KiB
// (Docker's default profile is 17 KiB).
const maxFileSize = 1 << 20

// readFile reads a regular file of at most maxFileSize bytes. It opens
// without blocking (a FIFO), refuses anything but a regular file, and reads
// no more than the size the file reports, so that a pseudo-file such as
// /proc/kmsg (size 0, endless) cannot hang the parser: it reads as empty.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return io.ReadAll(io.LimitReader(f, fi.Size()))
}

// document parses a YAML or JSON document into its top node. A document
// whose first non-blank character is { or [ is JSON and parsed as strict
// JSON (encoding/json's syntax, exact positions); anything else is YAML,
// which covers JSON too but is more lenient. Every error has a line.
func document(file string, data []byte) (*yaml.Node, *Error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(data) > maxFileSize {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	if err := checkText(file, data); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return jsonDocument(file, data)
	}
	doc, err := yamlDocument(file, data)
	if err != nil {
		// yaml.v3 places an error at the end of the input on the line after
		// the last one.
		lines := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		err.Line = max(min(err.Line, lines), 1)
	}
	return doc, err
}

// checkText rejects what YAML forbids (invalid UTF-8, control characters
// other than tab and line breaks) with its position; yaml.v3 reports these
// without one.
func checkText(file string, data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Error{File: file, Line: line, Column: col, Msg: "invalid UTF-8"}
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f && r != 0x85) || r == 0xfffe || r == 0xffff:
			return &Error{File: file, Line: line, Column: col, Msg: fmt.Sprintf("control character %U is not allowed", r)}
		}
		i += size
		col++
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlDocument(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty document"}
		}
		return nil, yamlError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(file, err)
	default:
		return nil, &Error{File: file, Line: max(next.Line, 1), Column: next.Column, Msg: "more than one YAML document"}
	}
	if len(doc.Content) != 1 {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty document"}
	}
	return doc.Content[0], nil
}

// yamlParserErrors are the messages of libyaml's parser (as opposed to its
// scanner). yaml.v3 reports their line 0-based, and a scanner's 1-based.
var yamlParserErrors = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlError turns a yaml.v3 syntax error into an *Error. yaml.v3 leaves the
// line out when the problem is on the first line.
func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if slices.Contains(yamlParserErrors, m[2]) {
			n++
		}
		return &Error{File: file, Line: max(n, 1), Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Line: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// jsonDocument checks the syntax with encoding/json, then builds the same
// node tree yaml.v3 would, with positions, from the token stream.
func jsonDocument(file string, data []byte) (*yaml.Node, *Error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		off := len(data)
		if errors.As(err, &se) {
			off = max(int(se.Offset)-1, 0)
		}
		line, col := position(data, off)
		return nil, &Error{File: file, Line: line, Column: col, Msg: "invalid JSON: " + err.Error()}
	}
	r := &jsonReader{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	r.dec.UseNumber()
	n, err := r.value()
	if err != nil { // not reached: the syntax was checked above
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "invalid JSON: " + err.Error()}
	}
	return n, nil
}

type jsonReader struct {
	dec  *json.Decoder
	data []byte
}

// start returns the offset where the next token begins.
func (r *jsonReader) start() int {
	i := int(r.dec.InputOffset())
	for i < len(r.data) && strings.IndexByte(" \t\r\n,:", r.data[i]) >= 0 {
		i++
	}
	return i
}

func (r *jsonReader) value() (*yaml.Node, error) {
	off := r.start()
	tok, err := r.dec.Token()
	if err != nil {
		return nil, err
	}
	line, col := position(r.data, off)
	n := &yaml.Node{Line: line, Column: col, Kind: yaml.ScalarNode}
	switch t := tok.(type) {
	case json.Delim:
		n.Kind, n.Tag, n.Style = yaml.MappingNode, "!!map", yaml.FlowStyle
		if t == '[' {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for r.dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := r.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k)
			}
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := r.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.Tag, n.Value, n.Style = "!!str", t, yaml.DoubleQuotedStyle
	case json.Number:
		n.Tag, n.Value = "!!int", t.String()
		if strings.ContainsAny(n.Value, ".eE") {
			n.Tag = "!!float"
		}
	case bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(t)
	case nil:
		n.Tag, n.Value = "!!null", "null"
	}
	return n, nil
}

// position converts a byte offset into a 1-based line and column (in
// characters).
func position(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	lineStart := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(data[lineStart:off])
}
