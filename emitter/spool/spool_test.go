package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode)) // re-executed child, see process_linux_test.go
	}
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, cfg Config) (*Spool, Recovery) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "spool")
	}
	s, rec, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

// drain reads until n records arrived, then checks that no more come.
func drain(t testing.TB, s *Spool, n int) []Record {
	t.Helper()
	var got []Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < n {
		recs, err := s.Next(ctx, 100)
		if err != nil {
			t.Fatalf("Next after %d of %d records: %v", len(got), n, err)
		}
		got = append(got, recs...)
	}
	if extra := pending(t, s); len(extra) > 0 {
		t.Fatalf("%d records beyond the expected %d, first %q", len(extra), n, extra[0].Data)
	}
	return got
}

// pending returns records Next hands out within a short wait.
func pending(t testing.TB, s *Spool) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	recs, err := s.Next(ctx, 1000)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v", err)
	}
	return recs
}

func data(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Data))
	}
	return out
}

func positions(recs []Record) []Position {
	var out []Position
	for _, r := range recs {
		out = append(out, r.Pos)
	}
	return out
}

func payloads(prefix string, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, fmt.Appendf(nil, `{"event":"%s-%d"}`, prefix, i))
	}
	return out
}

func strs(b [][]byte) []string {
	var out []string
	for _, x := range b {
		out = append(out, string(x))
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, rec := open(t, Config{Dir: dir})
	if len(rec.Claimed)+len(rec.Damage)+rec.Records != 0 {
		t.Errorf("fresh directory: Recovery = %+v, want empty", rec)
	}
	ctx := context.Background()
	var want []string
	for i := range 3 {
		batch := payloads(fmt.Sprint("b", i), 4)
		if err := s.Append(ctx, batch...); err != nil {
			t.Fatalf("Append: %v", err)
		}
		want = append(want, strs(batch)...)
	}
	got := drain(t, s, len(want))
	if diff := cmp.Diff(want, data(got)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Pending != len(want) || st.Appended != uint64(len(want)) {
		t.Errorf("Stats before Ack = %+v, want %d pending and appended", st, len(want))
	}
	if err := s.Ack(positions(got)...); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := s.Ack(positions(got)...); err != nil {
		t.Errorf("second Ack of the same positions: %v, want nil", err)
	}
	if st := s.Stats(); st.Pending != 0 {
		t.Errorf("Stats after Ack: Pending = %d, want 0", st.Pending)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after Close with everything acknowledged, %d files remain, want 0", len(entries))
	}

	s2, rec := open(t, Config{Dir: dir})
	if rec.Records != 0 {
		t.Errorf("reopen: Recovery.Records = %d, want 0", rec.Records)
	}
	if extra := pending(t, s2); len(extra) != 0 {
		t.Errorf("reopen delivered %q, want nothing", data(extra))
	}
}

func TestFilesAndDirectoryModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s, _ := open(t, Config{Dir: dir})
	if err := s.Append(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode %v, want 0700", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		if !isSegmentName(e.Name()) || fi.Mode().Perm() != 0o600 {
			t.Errorf("file %s mode %v, want a segment with mode 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestLooseDirectoryModeTightened(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	open(t, Config{Dir: dir})
	fi, _ := os.Stat(dir)
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode %v, want 0700", got)
	}
}

func TestGroupCommitOneSyncPerAppend(t *testing.T) {
	s, _ := open(t, Config{})
	before := s.Stats().Syncs
	if err := s.Append(context.Background(), payloads("launch", 12)...); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Syncs - before; got != 1 {
		t.Errorf("Append of 12 records made %d fdatasyncs, want 1", got)
	}
}

// TestGroupCommitCoalesces holds the leader inside its write while other
// goroutines queue, and checks that they all share the next fdatasync.
func TestGroupCommitCoalesces(t *testing.T) {
	s, _ := open(t, Config{})
	inWrite, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.testSplit = func() { once.Do(func() { close(inWrite); <-release }) }
	before := s.Stats().Syncs
	ctx := context.Background()
	const followers = 10
	var wg sync.WaitGroup
	errs := make(chan error, followers+1) // one result per goroutine
	wg.Go(func() { errs <- s.Append(ctx, []byte("leader")) })
	<-inWrite
	for i := range followers {
		wg.Go(func() { errs <- s.Append(ctx, fmt.Appendf(nil, "follower-%d", i)) })
	}
	for queued := 0; queued < followers; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		if s.group != nil {
			queued = len(s.group.batches)
		}
		s.mu.Unlock()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if got := s.Stats().Syncs - before; got != 2 {
		t.Errorf("%d appends made %d fdatasyncs, want 2 (leader, then one for all followers)", followers+1, got)
	}
	drain(t, s, followers+1)
}

func TestConcurrentAppendersKeepOrder(t *testing.T) {
	s, _ := open(t, Config{SegmentBytes: 64 << 10}) // several rotations
	const writers, appends, per = 8, 100, 3
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for a := range appends {
				var batch [][]byte
				for r := range per {
					batch = append(batch, fmt.Appendf(nil, "w%d %06d %s", w, a*per+r, strings.Repeat("p", 200)))
				}
				if err := s.Append(ctx, batch...); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	// Drain concurrently with the writers.
	var got []Record
	for len(got) < writers*appends*per && !t.Failed() {
		recs, err := s.Next(ctx, 64)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		if err := s.Ack(positions(recs)...); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	next := map[string]int{}
	for _, r := range got {
		var w string
		var seq int
		if _, err := fmt.Sscanf(string(r.Data), "%s %d", &w, &seq); err != nil {
			t.Fatalf("record %q: %v", r.Data, err)
		}
		if seq != next[w] {
			t.Fatalf("writer %s: record %d after %d records", w, seq, next[w])
		}
		next[w]++
	}
	st := s.Stats()
	t.Logf("%d appends, %d fdatasyncs, %d segments left", writers*appends, st.Syncs, st.Segments)
	if st.Syncs > writers*appends+1 {
		t.Errorf("%d fdatasyncs for %d appends", st.Syncs, writers*appends)
	}
	if st.Segments > 2 {
		t.Errorf("%d segments remain after acknowledging everything, want at most 2", st.Segments)
	}
}

func TestAckPositionPersists(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Config{Dir: dir})
	want := payloads("r", 10)
	if err := s.Append(context.Background(), want...); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 10)
	// Acknowledge 0..3 in order and 6 out of order.
	if err := s.Ack(got[3].Pos, got[0].Pos, got[2].Pos, got[1].Pos, got[6].Pos); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != 5 {
		t.Errorf("Pending = %d, want 5", st.Pending)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := open(t, Config{Dir: dir})
	// Only the contiguous prefix is persisted: 6 comes back.
	if rec.Records != 6 || len(rec.Claimed) != 1 {
		t.Errorf("Recovery = %+v, want 1 segment with 6 records", rec)
	}
	again := drain(t, s2, 6)
	if diff := cmp.Diff(strs(want[4:]), data(again)); diff != "" {
		t.Errorf("re-delivered (-want +got):\n%s", diff)
	}
	if again[0].Pos != got[4].Pos {
		t.Errorf("position changed across processes: %v, then %v", got[4].Pos, again[0].Pos)
	}
}

func TestAckRejectsUnknownPositions(t *testing.T) {
	s, _ := open(t, Config{})
	if err := s.Append(context.Background(), []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Next(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := open(t, Config{})
	if err := other.Append(context.Background(), []byte("c")); err != nil {
		t.Fatal(err)
	}
	foreign := drain(t, other, 1)[0].Pos
	err = s.Ack(Position{}, foreign, recs[0].Pos)
	if !errors.Is(err, ErrUnknownPosition) {
		t.Errorf("Ack(zero, foreign, valid) = %v, want ErrUnknownPosition", err)
	}
	if st := s.Stats(); st.Pending != 1 {
		t.Errorf("the valid position was not acknowledged: Pending = %d, want 1", st.Pending)
	}
}

func TestFullRefuseNew(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Config{Dir: dir, MaxBytes: 64 << 10})
	ctx := context.Background()
	rec := bytes.Repeat([]byte("e"), 1000)
	var appended int
	var err error
	for range 1000 {
		if err = s.Append(ctx, fmt.Appendf(rec[:0:0], "%04d%s", appended, rec)); err != nil {
			break
		}
		appended++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append into a full spool: %v, want ErrFull", err)
	}
	for _, want := range []string{dir, "65536"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if st := s.Stats(); st.Refused != 1 || st.DirBytes > st.MaxBytes {
		t.Errorf("Stats = %+v, want 1 refused and DirBytes within MaxBytes", st)
	}
	got := drain(t, s, appended)
	for i, r := range got {
		if want := fmt.Sprintf("%04d", i); !bytes.HasPrefix(r.Data, []byte(want)) {
			t.Fatalf("record %d is %.4q, want %s", i, r.Data, want)
		}
	}
	if err := s.Ack(positions(got)...); err != nil {
		t.Fatal(err)
	}
	for i := range appended / 2 {
		if err := s.Append(ctx, rec); err != nil {
			t.Fatalf("Append %d after acknowledging everything: %v", i, err)
		}
	}
}

func TestFullBlockWaitsForAcks(t *testing.T) {
	s, _ := open(t, Config{MaxBytes: 64 << 10, Full: Block})
	rec := bytes.Repeat([]byte("b"), 1000)
	var n int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := s.Append(ctx, rec)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrFull) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Append into a full spool: %v, want ErrFull and DeadlineExceeded", err)
			}
			break
		}
		n++
	}
	done := make(chan error, 1)              // the blocked Append's result
	after := append([]byte("after"), rec...) // larger than what did not fit
	go func() { done <- s.Append(context.Background(), after) }()
	got := drain(t, s, n)
	if err := s.Ack(positions(got)...); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked Append: %v", err)
	}
	if got := drain(t, s, 1); !bytes.Equal(got[0].Data, after) {
		t.Errorf("got %.10q, want the blocked record", got[0].Data)
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := open(t, Config{MaxBytes: 1 << 20})
	ctx := context.Background()
	if err := s.Append(ctx, make([]byte, maxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("record above 16 MiB: %v, want ErrTooLarge", err)
	}
	if err := s.Append(ctx, make([]byte, 100<<10), make([]byte, 200<<10)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("batch above the segment size: %v, want ErrTooLarge", err)
	}
}

func TestClosed(t *testing.T) {
	s, _ := open(t, Config{})
	ctx := context.Background()
	next := make(chan error, 1) // the blocked Next's result
	go func() {
		_, err := s.Next(ctx, 1)
		next <- err
	}()
	if err := s.Append(ctx, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatalf("Next: %v", err)
	}
	go func() {
		_, err := s.Next(ctx, 1)
		next <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-next; !errors.Is(err, ErrClosed) {
		t.Errorf("Next blocked during Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if err := s.Append(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Next(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
	if err := s.Ack(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close: %v, want ErrClosed", err)
	}
}

func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{}, "Config.Dir is empty"},
		{"segment too large", Config{Dir: t.TempDir(), MaxBytes: 1 << 20, SegmentBytes: 512 << 10}, "exceeds MaxBytes/4"},
		{"max too small", Config{Dir: t.TempDir(), MaxBytes: 1000}, "below"},
		{"unknown policy", Config{Dir: t.TempDir(), Full: 7}, "FullPolicy(7)"},
		{"not a directory", Config{Dir: file}, "open spool: mkdir " + file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := Open(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFullPolicyString(t *testing.T) {
	for p, want := range map[FullPolicy]string{RefuseNew: "refuse-new", Block: "block", 9: "FullPolicy(9)"} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}

func TestLoggerReceivesDamage(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Config{Dir: dir})
	if err := s.Append(context.Background(), []byte("one")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, s.active.name)
	s.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0xFE, 'S', 'R'})
	f.Close()
	var buf bytes.Buffer
	_, rec := open(t, Config{Dir: dir, Logger: zerolog.New(&buf)})
	if len(rec.Damage) != 1 {
		t.Fatalf("Recovery.Damage = %v, want one torn tail", rec.Damage)
	}
	log := buf.String()
	for _, want := range []string{`"file":"` + path + `"`, `"offset":` + fmt.Sprint(rec.Damage[0].Offset), `"torn_tail":true`} {
		if !strings.Contains(log, want) {
			t.Errorf("log %s does not contain %s", log, want)
		}
	}
}
