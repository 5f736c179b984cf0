package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/chain"
)

var trailStart = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// verifyCase is one way to damage run-t (12 events) next to an intact
// run-ok, and what verify must say about it.
type verifyCase struct {
	name   string
	mutate func(t *testing.T, ev [][]byte) [][]byte
	code   int
	want   []string // lines or fragments the output must contain
}

func verifyCases() []verifyCase {
	setMessage := func(m map[string]any) { m["message"] = "nothing happened" }
	return []verifyCase{
		{"intact", nil, 0, []string{
			"run run-t: COMPLETE", "12 events (seq 1..12), final count 12, chain head signature valid (key ",
			"2 runs: 2 complete, 0 incomplete, 0 tampered"}},
		{"delete one event", func(t *testing.T, ev [][]byte) [][]byte { return slices.Delete(ev, 4, 5) }, 1, []string{
			"run run-t: INCOMPLETE", "missing: seq 5 (1 event)", "run run-ok: COMPLETE"}},
		{"change one field", func(t *testing.T, ev [][]byte) [][]byte {
			ev[6] = tamper(t, ev[6], false, setMessage)
			return ev
		}, 1, []string{"run run-t: TAMPERED", "seq 7: modified: content does not match its hash"}},
		{"change one field and re-hash", func(t *testing.T, ev [][]byte) [][]byte {
			ev[6] = tamper(t, ev[6], true, setMessage)
			return ev
		}, 1, []string{"run run-t: TAMPERED", "seq 8: broken_chain: prev does not match the hash of seq 7"}},
		{"reorder two events", func(t *testing.T, ev [][]byte) [][]byte {
			ev[3], ev[4] = ev[4], ev[3]
			return ev
		}, 0, []string{"run run-t: COMPLETE", "note: seq 4: out_of_order: seq 4 arrived after seq 5"}},
		{"duplicate one event", func(t *testing.T, ev [][]byte) [][]byte { return slices.Insert(ev, 9, ev[2]) }, 0, []string{
			"run run-t: COMPLETE", "1 identical duplicates ignored"}},
		{"duplicate with other content", func(t *testing.T, ev [][]byte) [][]byte {
			return slices.Insert(ev, 9, tamper(t, ev[2], false, setMessage))
		}, 1, []string{"run run-t: TAMPERED", "seq 3: conflict: two different events with the same metadata.uid"}},
		{"truncate the run", func(t *testing.T, ev [][]byte) [][]byte { return ev[:8] }, 1, []string{
			"run run-t: INCOMPLETE", "seq 8: no_final: no final event: the run is still running, or its last events were lost"}},
		{"forge the final count", func(t *testing.T, ev [][]byte) [][]byte {
			ev[11] = tamper(t, ev[11], true, func(m map[string]any) {
				m["unmapped"].(map[string]any)[chain.LinkMember].(map[string]any)["count"] = json.Number("15")
			})
			return ev
		}, 1, []string{"run run-t: TAMPERED", "seq 12: forged_count: the final event is seq 12 but states count 15",
			"seq 12: bad_signature"}},
	}
}

// run-t's events with run-ok's interleaved after the second.
func verifyInput(t *testing.T, c verifyCase, signer *chain.Signer) [][]byte {
	t.Helper()
	events := sealedTrail(t, "run-t", 12, signer, trailStart)
	if c.mutate != nil {
		events = c.mutate(t, events)
	}
	ok := sealedTrail(t, "run-ok", 3, signer, trailStart)
	return slices.Concat(events[:2], ok, events[2:])
}

func checkVerifyOutput(t *testing.T, c verifyCase, code int, stdout, stderr string) {
	t.Helper()
	if code != c.code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
	}
	for _, w := range c.want {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if !strings.Contains(stdout, "run run-ok: COMPLETE") {
		t.Errorf("the intact run is not reported complete:\n%s", stdout)
	}
}

func TestVerifyFiles(t *testing.T) {
	signer, pub := trailKey(t)
	for _, c := range verifyCases() {
		t.Run(c.name, func(t *testing.T) {
			file := writeNDJSON(t, verifyInput(t, c, signer))
			code, stdout, stderr := runCLI(t, "", "verify", "--key", pub, file)
			checkVerifyOutput(t, c, code, stdout, stderr)
			if c.code != 0 && !strings.Contains(stdout, "missing") && !strings.Contains(stdout, file+":") {
				t.Errorf("output does not name the file and line:\n%s", stdout)
			}
		})
	}
}

func TestVerifyStream(t *testing.T) {
	signer, pub := trailKey(t)
	srv := startTestServer(t)
	for _, c := range verifyCases() {
		t.Run(c.name, func(t *testing.T) {
			srv.publish(t, verifyInput(t, c, signer))
			code, stdout, stderr := runCLI(t, "", "verify", "--nats", srv.url, "--key", pub)
			checkVerifyOutput(t, c, code, stdout, stderr)
			if c.code != 0 && !strings.Contains(stdout, "missing") && !strings.Contains(stdout, "[SANDTRAIL_EVENTS:") {
				t.Errorf("output does not name the stream sequence:\n%s", stdout)
			}
		})
	}
	t.Run("one run", func(t *testing.T) {
		srv.publish(t, verifyInput(t, verifyCases()[1], signer))
		code, stdout, _ := runCLI(t, "", "verify", "--nats", srv.url, "--run", "run-ok", "--since", "2026-11-01")
		if code != 0 || strings.Contains(stdout, "run-t") || !strings.Contains(stdout, "signature not checked") {
			t.Errorf("verify --run run-ok: exit %d\n%s", code, stdout)
		}
		code, stdout, _ = runCLI(t, "", "verify", "--nats", srv.url, "--run", "run-none")
		if code != 1 || !strings.Contains(stdout, "run run-none: no events found in stream SANDTRAIL_EVENTS") {
			t.Errorf("verify --run run-none: exit %d\n%s", code, stdout)
		}
	})
}

// An export re-serialised by a SIEM (a pretty-printed JSON array, keys
// sorted, other escapes) still verifies, with the array's line numbers.
func TestVerifyReserialisedExport(t *testing.T) {
	signer, pub := trailKey(t)
	events := sealedTrail(t, "run-siem", 6, signer, trailStart)
	var arr []any
	for _, ev := range events {
		arr = append(arr, decodeMap(t, ev))
	}
	b, err := json.MarshalIndent(arr, "", "    ") // sorted keys, HTML-escaped <>&
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(`"sandtrail"`), []byte(`"\u0073andtrail"`))
	file := filepath.Join(t.TempDir(), "siem.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "verify", "--key", pub, file)
	if code != 0 || !strings.Contains(stdout, "run run-siem: COMPLETE") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// The same file with one field changed fails, at the element's line.
	b = bytes.Replace(b, []byte(`"severity_id": 1`), []byte(`"severity_id": 2`), 1)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, "", "verify", "--key", pub, file)
	if code != 1 || !strings.Contains(stdout, ": modified:") || !strings.Contains(stdout, file+":") {
		t.Errorf("tampered array: exit %d\n%s", code, stdout)
	}
}

func TestVerifyJSON(t *testing.T) {
	signer, _ := trailKey(t)
	c := verifyCases()[1] // one event deleted
	file := writeNDJSON(t, append(verifyInput(t, c, signer), []byte(`{"not":"an event"}`)))
	code, stdout, _ := runCLI(t, "", "verify", "--json", file)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var rep chain.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	if rep.OK || rep.SignaturesChecked || len(rep.Runs) != 2 || rep.MalformedCount != 1 {
		t.Fatalf("report = %+v", rep)
	}
	r := rep.Runs[1]
	if r.Run != "run-t" || r.Status != chain.StatusIncomplete || len(r.Missing) != 1 || r.Missing[0] != (chain.Range{First: 5, Last: 5}) ||
		r.Signature != chain.SigNotChecked {
		t.Errorf("run-t = %+v", r)
	}
	if rep.Malformed[0].At.Index != 15 {
		t.Errorf("malformed input at %v, want line 15", rep.Malformed[0].At)
	}
}

func TestVerifyUsage(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.WriteFile(seed, []byte("SUAGMJH5XLGZKQQWAWKRZJIGMOU4HPFUYLXJMXOO5NLLEO4Q4VSKKELBDY"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify", "--key", filepath.Join(dir, "nope"), "x.ndjson"}, 2, "no such file"},
		{[]string{"verify", "--key", seed, "x.ndjson"}, 2, "private"},
		{[]string{"verify", "--since", "1h", "x.ndjson"}, 2, "--since reads the stream"},
		{[]string{"verify", filepath.Join(dir, "missing.ndjson")}, 2, "no such file"},
		{[]string{"verify", "--nats", "127.0.0.1:1", "--since", "yesterday"}, 2, `--since "yesterday"`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
			t.Errorf("%v: exit %d, %s%s; want %d and %q", tt.args, code, stdout, stderr, tt.code, tt.want)
		}
	}
	code, stdout, _ := runCLI(t, "", "verify", "-")
	if code != 1 || !strings.Contains(stdout, "no events found in -") {
		t.Errorf("empty stdin: exit %d\n%s", code, stdout)
	}
}
