package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestIntegrationDemo runs `sandtrail demo` as a newcomer would, then checks
// what it left with the tools a user has: every event validates, every
// sandbox run's trail verifies (chained, complete, signed), the degraded
// run raised an alert, and no process is left behind.
func TestIntegrationDemo(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--dir", dir)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sandtrail demo: %v\n%s", err, out)
	}
	for _, want := range []string{"what happened", "try next", "sandtrail verify"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events", "*.ndjson"))
	if len(files) == 0 {
		t.Fatalf("no NDJSON files under %s/events", dir)
	}
	v := exec.Command(bin, append([]string{"validate"}, files...)...)
	if vout, err := v.CombinedOutput(); err != nil {
		t.Errorf("sandtrail validate: %v\n%s", err, vout)
	}
	runs := demoRunIDs(t, files)
	if len(runs) != 3 {
		t.Fatalf("sandbox runs in the export: %v, want 3", runs)
	}
	for _, id := range runs {
		args := append([]string{"verify", "--key", filepath.Join(dir, "signing.pub"), "--run", id}, files...)
		if vout, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("sandtrail verify --run %s: %v\n%s", id, err, vout)
		}
	}
	// The whole export verifies: the three runs and the collector's own
	// trail, whose stop event the collector let its sinks export.
	args := append([]string{"verify", "--key", filepath.Join(dir, "signing.pub")}, files...)
	vout, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(vout), "4 runs: 4 complete") {
		t.Errorf("sandtrail verify of the whole export: %v\n%s", err, vout)
	}
	alerts, err := os.ReadFile(filepath.Join(dir, "alerts.ndjson"))
	if err != nil || !strings.Contains(string(alerts), runs[1]) {
		t.Errorf("no alert about the degraded run %s: %v\n%s", runs[1], err, alerts)
	}
	if strings.Contains(string(alerts), runs[0]) {
		t.Errorf("an alert about the fully confined run %s:\n%s", runs[0], alerts)
	}
	// Nothing the demo started outlives it.
	time.Sleep(100 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), dir) {
			t.Errorf("a process is left behind: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// demoRunIDs returns the sandbox run ids (demo-N-...) in the export, sorted.
func demoRunIDs(t *testing.T, files []string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 2<<20)
		for sc.Scan() {
			var ev struct {
				Metadata struct {
					CorrelationUID string `json:"correlation_uid"`
				} `json:"metadata"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.HasPrefix(ev.Metadata.CorrelationUID, "demo-") {
				seen[ev.Metadata.CorrelationUID] = true
			}
		}
		fh.Close()
	}
	var ids []string
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
