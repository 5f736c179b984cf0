package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// child is a re-executed test binary running a helper mode.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	status *bufio.Scanner // fd 3 of an appender
	last   int            // last count read from status
	lines  chan string    // stdout lines of a drainer; closed at EOF
	eof    chan struct{}  // closed when stdout is read to the end
	stderr bytes.Buffer
}

func startChild(t *testing.T, mode string, env ...string) *child {
	t.Helper()
	c := &child{t: t}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	var statusW *os.File
	if mode == "append" {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c.status, statusW = bufio.NewScanner(r), w
		c.cmd.ExtraFiles = []*os.File{w}
		t.Cleanup(func() { r.Close() })
	}
	var stdout io.ReadCloser
	if mode == "drain" {
		if stdout, err = c.cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if statusW != nil {
		statusW.Close()
	}
	if stdout != nil {
		c.lines = make(chan string, 1024) // decouples the child's writes from the test's reads
		c.eof = make(chan struct{})
		go func() { // ends when the child exits
			defer close(c.eof)
			defer close(c.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				c.lines <- sc.Text()
			}
		}()
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

// appended reads the appender's status until it reports at least n
// records (n < 0: until it exits) and returns the last count.
func (c *child) appended(n int) int {
	for (n < 0 || c.last < n) && c.status.Scan() {
		if c.status.Text() == "split" {
			continue
		}
		v, err := strconv.Atoi(c.status.Text())
		if err != nil {
			c.t.Fatalf("status line %q: %v", c.status.Text(), err)
		}
		c.last = v
	}
	if n >= 0 && c.last < n {
		c.t.Fatalf("appender stopped after %d records, want %d; stderr:\n%s", c.last, n, c.stderr.String())
	}
	return c.last
}

// inSplit reads the appender's status until it pauses in the middle of a
// write.
func (c *child) inSplit() {
	for c.status.Scan() {
		if c.status.Text() == "split" {
			return
		}
		c.last, _ = strconv.Atoi(c.status.Text())
	}
	c.t.Fatalf("appender exited; stderr:\n%s", c.stderr.String())
}

// kill sends SIGKILL; the cleanup reaps the child.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
}

// finish closes the child's stdin and waits for a clean exit.
func (c *child) finish() {
	c.stdin.Close()
	if c.eof != nil {
		<-c.eof // Wait closes stdout: read it all first
	}
	if err := c.cmd.Wait(); err != nil {
		c.t.Fatalf("child: %v; stderr:\n%s", err, c.stderr.String())
	}
}

// checkSequences parses records "<prefix> <seq> ..." and checks that each
// prefix's sequence numbers are 0, 1, 2... with no gap or duplicate.
func checkSequences(t *testing.T, recs []string) map[string]int {
	t.Helper()
	next := map[string]int{}
	for _, r := range recs {
		var prefix string
		var seq int
		if _, err := fmt.Sscanf(r, "%s %d", &prefix, &seq); err != nil {
			t.Fatalf("record %.40q: %v", r, err)
		}
		if seq != next[prefix] {
			t.Fatalf("writer %s: record %d where %d was expected", prefix, seq, next[prefix])
		}
		next[prefix]++
	}
	return next
}

// TestKill9 kills appenders: in even rounds in the middle of a write
// (the child pauses there), in odd rounds at whatever instant follows an
// Append's return. Every record whose Append returned must survive, and
// torn tails must be reported and block nothing.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	const rounds = 6
	acked := map[string]int{}
	for r := range rounds {
		prefix := fmt.Sprint("round", r)
		c := startChild(t, "append", envDir+"="+dir, envPrefix+"="+prefix, envSplit+"=3")
		c.appended(12 * (2 + rand.IntN(10)))
		if r%2 == 0 {
			c.inSplit()
		}
		c.kill()
		acked[prefix] = c.appended(-1) // counts written before the kill
	}

	s, rec := open(t, Config{Dir: dir})
	var got []string
	for recs := pending(t, s); len(recs) > 0; recs = pending(t, s) {
		got = append(got, data(recs)...)
	}
	delivered := checkSequences(t, got)
	for prefix, n := range acked {
		t.Logf("%s: %d appended, %d delivered", prefix, n, delivered[prefix])
		if delivered[prefix] < n || delivered[prefix] > n+12 {
			t.Errorf("%s: %d records delivered, %d appended (want between %d and %d)", prefix, delivered[prefix], n, n, n+12)
		}
	}
	torn := 0
	for _, d := range rec.Damage {
		t.Logf("reported: %v", d)
		if !d.TornTail {
			t.Errorf("damage in the middle of a segment: %v", d)
		}
		torn++
	}
	t.Logf("%d kills, %d torn tails, %d records delivered", rounds, torn, len(got))
	if torn < rounds/2 {
		t.Errorf("%d torn tails, want at least %d (one per kill during a write)", torn, rounds/2)
	}
}

// TestKill9WhileAcking kills a drainer and checks that records are
// delivered again only if their Ack may not have returned.
func TestKill9WhileAcking(t *testing.T) {
	dir := t.TempDir()
	const n = 600
	w, _, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for seq := range n {
		want = append(want, string(record("w", seq)))
		if err := w.Append(context.Background(), record("w", seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	c := startChild(t, "drain", envDir+"="+dir)
	var published []string
	for line := range c.lines {
		published = append(published, line)
		if len(published) == 200 {
			c.kill()
		}
	}
	s, rec := open(t, Config{Dir: dir})
	again := data(drain(t, s, rec.Records))
	// again must be the suffix of want after the persisted ack position k;
	// every record before k was published; records published after k are
	// delivered twice, at most one Next batch (10).
	k := n - len(again)
	t.Logf("published %d records before the kill; acknowledged position: record %d", len(published), k)
	if strings.Join(again, "\n") != strings.Join(want[k:], "\n") {
		t.Errorf("after the kill, delivered records are not the %d last appended", len(again))
	}
	if k > len(published) {
		t.Errorf("records %d to %d were acknowledged but never published", len(published), k)
	}
	if dup := len(published) - k; dup > 10 {
		t.Errorf("%d records delivered twice, want at most 10 (one Next batch)", dup)
	}
}

// TestProcessesShareDirectory runs two appenders in one directory; one is
// killed. Two drainers, a child process and this one, then race for the
// dead writer's segments while the live writer's stay untouched; once the
// live writer closes, its records are drained too. Every record must be
// delivered exactly once.
func TestProcessesShareDirectory(t *testing.T) {
	dir := t.TempDir()
	const n = 240
	small := envSeg + "=65536" // several segments per writer
	live := startChild(t, "append", envDir+"="+dir, envPrefix+"=live", envCount+"="+fmt.Sprint(n), envClose+"=1", small)
	dead := startChild(t, "append", envDir+"="+dir, envPrefix+"=dead", envCount+"="+fmt.Sprint(n), small)
	live.appended(n)
	dead.appended(n)
	dead.kill()

	start := time.Now()
	drainer := startChild(t, "drain", envDir+"="+dir)
	s, _ := open(t, Config{Dir: dir, ClaimInterval: 20 * time.Millisecond})
	var mu sync.Mutex
	var mine, theirs []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for line := range drainer.lines {
			mu.Lock()
			theirs = append(theirs, line)
			mu.Unlock()
		}
	})
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(mine) + len(theirs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	released := false
	for total() < 2*n {
		if !released && total() == n {
			mu.Lock()
			for _, r := range append(append([]string{}, mine...), theirs...) {
				if strings.HasPrefix(r, "live ") {
					t.Errorf("record of the live writer delivered while it runs: %.20q", r)
				}
			}
			mu.Unlock()
			live.finish() // closes its spool: its segments become claimable
			released = true
		}
		sctx, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
		recs, err := s.Next(sctx, 20)
		scancel()
		if ctx.Err() != nil {
			t.Fatalf("timed out with %d of %d records", total(), 2*n)
		}
		if err != nil {
			continue
		}
		if err := s.Ack(positions(recs)...); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		mine = append(mine, data(recs)...)
		mu.Unlock()
	}
	drainer.finish()
	wg.Wait()
	t.Logf("this process drained %d records, the child %d, in %v", len(mine), len(theirs), time.Since(start))
	seen := map[string]int{}
	for _, r := range append(mine, theirs...) {
		seen[r]++
	}
	for _, prefix := range []string{"live", "dead"} {
		for seq := range n {
			if c := seen[string(record(prefix, seq))]; c != 1 {
				t.Errorf("%s record %d delivered %d times, want 1", prefix, seq, c)
			}
		}
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct records, want %d", len(seen), 2*n)
	}
}

// TestUnwritableDirectory checks the error for a directory the process
// may not write. Root bypasses permission bits, so as root the check runs
// in a child with the credentials of uid 65534.
func TestUnwritableDirectory(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // let uid 65534 reach it
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ro := filepath.Join(base, "ro")
	notOwned := filepath.Join(base, "other")
	for _, d := range []string{ro, notOwned} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(ro, 0o500)
	tests := []struct {
		name, dir string
		want      []string
	}{
		{"read-only directory", ro, []string{"open spool: ", ro + "/", "permission denied"}},
		{"missing under a read-only parent", filepath.Join(ro, "spool"), []string{"open spool: mkdir " + filepath.Join(ro, "spool"), "permission denied"}},
	}
	if os.Geteuid() != 0 {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := Open(Config{Dir: tt.dir})
				checkContains(t, fmt.Sprint(err), tt.want)
			})
		}
		return
	}
	const nobody = 65534
	os.Chown(ro, nobody, nobody)
	tests = append(tests, struct {
		name, dir string
		want      []string
	}{"owned by another user", notOwned, []string{"open spool: " + notOwned + ": owned by uid 0, not by the effective uid 65534"}})
	// The test binary's directory is private to root: run a copy.
	bin := filepath.Join(base, "spool.test")
	copyFile(t, os.Args[0], bin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=open", envDir+"="+tt.dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("Open as uid %d succeeded, want an error", nobody)
			}
			checkContains(t, string(out), tt.want)
		})
	}
}

func checkContains(t *testing.T, got string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("error %q does not contain %q", strings.TrimSpace(got), w)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
