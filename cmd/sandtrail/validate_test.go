package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func readBench(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/bench", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestValidateInputs(t *testing.T) {
	good := readBench(t, "compliance_1k7.json")
	bad := readBench(t, "compliance_invalid.json")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pretty := write("pretty.json", "\n"+strings.Replace(good, `"class_uid":2003,`, "\"class_uid\": 2003,\n  ", 1)+"\n")
	array := write("array.json", "[\n"+good+",\n"+bad+"\n]\n")
	ndjson := write("events.ndjson", good+"\n\n"+bad+"\n"+good+"\n")
	binary := write("binary.bin", "\x00\x01\x02garbage")
	huge := write("huge.ndjson", good+"\n"+"{\"message\":\""+strings.Repeat("x", 2<<20)+"\"}\n"+good+"\n")

	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		contains []string
	}{
		{"ndjson file", []string{"validate", ndjson}, "", 1, []string{
			ndjson + ":3: compliance_finding: /compliance/status_id: 7 is not a valid status_id", "2 passed, 1 failed"}},
		{"stdin", []string{"validate"}, good + "\n", 0, []string{"1 passed, 0 failed"}},
		{"dash is stdin", []string{"validate", "-"}, bad, 1, []string{"<stdin>:1:", "0 passed, 1 failed"}},
		{"pretty single document", []string{"validate", pretty}, "", 0, []string{"1 passed, 0 failed"}},
		{"array with line numbers", []string{"validate", array}, "", 1, []string{array + ":3: compliance_finding: /compliance/status_id", "1 passed, 1 failed"}},
		{"binary input is unusable", []string{"validate", binary}, "", 2, []string{"binary data", "0 passed, 0 failed"}},
		{"missing file is unusable", []string{"validate", filepath.Join(dir, "nope.json")}, "", 2, []string{"no such file", "0 passed, 0 failed"}},
		{"oversized line reported, rest validated", []string{"validate", huge}, "", 1, []string{huge + ":2: line longer than", "2 passed, 1 failed"}},
		{"reference engine", []string{"validate", "--engine", "jsonschema", ndjson}, "", 1, []string{"compliance_finding: ", "2 passed, 1 failed"}},
		{"quiet", []string{"validate", "-q", ndjson}, "", 1, []string{"2 passed, 1 failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; !strings.HasSuffix(last, " failed") {
				t.Errorf("last line %q is not the summary", last)
			}
		})
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: sandtrail COMMAND"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"validate", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"validate", "--engine", "magic"}, 2, `unknown engine "magic"`},
		{[]string{"schema", "import", "x"}, 2, "usage: sandtrail schema export DIR"},
	} {
		code, _, errOut := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("sandtrail %v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	code, out, _ := runCLI(t, "", "help")
	if code != 0 || !strings.Contains(out, "validate") {
		t.Errorf("help: exit %d, %q", code, out)
	}
}

func TestSchemaExport(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "", "schema", "export", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "wrote 9 JSON Schema documents") {
		t.Errorf("stdout %q", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "compliance_finding.json"))
	if err != nil || !bytes.Contains(b, []byte(`"$schema": "http://json-schema.org/draft-07/schema#"`)) {
		t.Errorf("exported document: %v\n%.200s", err, b)
	}
}
