package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/schema"
)

// buildBinary builds sandtrail as users get it (static, CGO_ENABLED=0)
// into a directory every uid can read.
func buildBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandtrail-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "sandtrail")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func exitStatus(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestIntegrationRunExitCodesAndBadPolicy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): the default policy drops privileges for real")
	}
	bin := buildBinary(t)
	spoolDir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return exitStatus(err), out.String(), errb.String()
	}
	code, out, errOut := run("run", "--no-publish", "--spool", spoolDir, "--", "/bin/sh", "-c", "echo confined; exit 3")
	if code != 3 || out != "confined\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 3 and confined", code, out, errOut)
	}
	code, _, _ = run("run", "--no-publish", "--spool", spoolDir, "--", "/no/such/program")
	if code != 127 {
		t.Errorf("missing command: exit %d, want 127", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nversion: \"1\"\ncontrols:\n  seccomp:\n    mode: sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run("run", "--no-publish", "--spool", spoolDir, "--policy", bad, "--", "/bin/sh", "-c", "echo ran")
	if code != 125 || out != "" || !strings.Contains(errOut, bad+":5:") || !strings.Contains(errOut, "controls.seccomp.mode") {
		t.Errorf("bad policy: exit %d, stdout %q, stderr %q; want 125, nothing run, an error naming %s:5 and the field", code, out, errOut, bad)
	}
	code, out, _ = run("policy", "check", bad)
	if code != 1 || !strings.Contains(out, bad+":5:") {
		t.Errorf("policy check: exit %d, %q", code, out)
	}
	code, out, _ = run("policy", "show")
	if code != 0 || !strings.Contains(out, "seccomp") {
		t.Errorf("policy show: exit %d, %q", code, out)
	}
}

// TestIntegrationServerAndRun runs `sandtrail server` and `sandtrail run` as
// separate processes, as a user would, and reads the run's trail back from
// the stream.
func TestIntegrationServerAndRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): the default policy drops privileges for real")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "server", "--listen", "127.0.0.1:0", "--store", t.TempDir(), "--spool", t.TempDir(), "--stream-max-bytes", "67108864")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	url := ""
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "listening on "); i >= 0 {
			url = strings.TrimSuffix(strings.Fields(line[i+len("listening on "):])[0], ",")
		}
		if strings.Contains(line, "ready") {
			break
		}
	}
	go func() { _, _ = bufioDiscard(sc) }()
	if url == "" {
		t.Fatal("server did not print its URL")
	}
	runCmd := exec.CommandContext(ctx, bin, "run", "--nats", url, "--spool", t.TempDir(), "--run-id", "e2e-run-1", "--", "/bin/true")
	if out, err := runCmd.CombinedOutput(); err != nil {
		t.Fatalf("sandtrail run: %v\n%s", err, out)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	seq := 0
	info, _ := s.Info(ctx)
	for n := info.State.FirstSeq; n <= info.State.LastSeq; n++ {
		m, err := s.GetMsg(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(m.Data); err != nil {
			t.Errorf("stream message %d invalid: %v", n, err)
		}
		var ev struct {
			Metadata struct {
				CorrelationUID string `json:"correlation_uid"`
				Sequence       int    `json:"sequence"`
				EventCode      string `json:"event_code"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(m.Data, &ev)
		if ev.Metadata.CorrelationUID != "e2e-run-1" {
			continue
		}
		seq++
		if ev.Metadata.Sequence != seq {
			t.Errorf("run event %d has sequence %d", seq, ev.Metadata.Sequence)
		}
		codes = append(codes, ev.Metadata.EventCode)
	}
	if len(codes) < 12 || codes[len(codes)-1] != "EXIT" || codes[len(codes)-3] != "LAUNCH" {
		t.Errorf("run trail %v: want the control decisions, posture, LAUNCH, SETUID, EXIT", codes)
	}
}

func bufioDiscard(sc *bufio.Scanner) (int, error) {
	n := 0
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// TestIntegrationSupervisorDeath: when the supervisor dies (SIGKILL, no
// chance to clean up), the sandboxed process dies with it.
func TestIntegrationSupervisorDeath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): the default policy drops privileges for real")
	}
	bin := buildBinary(t)
	marker := "31337" // a sleep argument nothing else uses
	for _, policyArgs := range [][]string{nil, {"--policy", writePolicy(t, "name: no-pidns\nversion: \"1\"\ncontrols:\n  namespaces:\n    mode: off\n")}} {
		args := append([]string{"run", "--no-publish", "--spool", t.TempDir()}, policyArgs...)
		cmd := exec.Command(bin, append(args, "--", "/bin/sleep", marker)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for sleepers(marker) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if sleepers(marker) == 0 {
			_ = cmd.Process.Kill()
			t.Fatal("the sandboxed sleep never started")
		}
		_ = cmd.Process.Signal(os.Kill)
		_ = cmd.Wait()
		deadline = time.Now().Add(5 * time.Second)
		for sleepers(marker) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := sleepers(marker); n > 0 {
			t.Errorf("policy %v: %d sandboxed processes outlived their supervisor", policyArgs, n)
		}
	}
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sleepers counts live processes running "sleep <marker>".
func sleepers(marker string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if string(b) == "/bin/sleep\x00"+marker+"\x00" {
			if st, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat")); err == nil && !strings.Contains(string(st), ") Z ") {
				n++
			}
		}
	}
	return n
}
