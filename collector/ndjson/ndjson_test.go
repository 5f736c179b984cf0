package ndjson_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readDir returns every event line of the sink's files, compressed or not.
func readDir(t testing.TB, dir string) []sinktest.Received {
	t.Helper()
	for {
		if out, ok := tryReadDir(t, dir); ok {
			return out
		}
		// A file was compressed (and removed) while we read: again.
	}
}

func tryReadDir(t testing.TB, dir string) ([]sinktest.Received, bool) {
	var out []sinktest.Received
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			continue
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			line := bytes.Clone(sc.Bytes())
			var ev struct {
				Metadata struct {
					UID string `json:"uid"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s: a line that is not JSON: %v: %.80q", f, err, line)
			}
			out = append(out, sinktest.Received{UID: ev.Metadata.UID, Data: line})
		}
	}
	return out, true
}

// tinyFS mounts a small tmpfs, so that filling it makes writes fail with
// ENOSPC for real. It needs CAP_SYS_ADMIN.
func tinyFS(t *testing.T, size string) (dir string, ok bool) {
	t.Helper()
	dir = t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		return "", false
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir, true
}

// fill writes a file until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	// Page-sized leftovers: a few small writes to use them up.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			return
		}
	}
}

func TestConformance(t *testing.T) {
	h := sinktest.Harness{ExactBytes: true}
	var dir string
	if d, ok := tinyFS(t, "16m"); ok {
		dir = filepath.Join(d, "events")
		filler := filepath.Join(d, "filler")
		h.Break = func(t *testing.T) { fill(t, filler) }
		h.Restore = func(t *testing.T) {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		t.Log("Retry subtests skipped: a full disk is reproduced with a tmpfs mount, which needs CAP_SYS_ADMIN")
		dir = filepath.Join(t.TempDir(), "events")
	}
	h.New = func(t *testing.T) collector.Sink {
		s, err := ndjson.New(ndjson.Config{Dir: dir, MaxBytes: 512 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	h.Read = func(t *testing.T) []sinktest.Received { return readDir(t, dir) }
	sinktest.Run(t, h)
}

func TestConformanceGzip(t *testing.T) {
	dir := t.TempDir()
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := ndjson.New(ndjson.Config{Dir: dir, MaxBytes: 64 << 10, Gzip: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read:       func(t *testing.T) []sinktest.Received { return readDir(t, dir) },
		ExactBytes: true,
	})
}

func TestRotationBySize(t *testing.T) {
	dir := t.TempDir()
	s, err := ndjson.New(ndjson.Config{Dir: dir, MaxBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	evs := sinktest.Events(20) // about 1 KB each
	mustWrite(t, s, evs)       // in one batch: split at 8 KiB
	files, _ := s.Files()
	if len(files) < 3 {
		t.Fatalf("after 20 KB with MaxBytes 8 KiB: got %d files, want at least 3", len(files))
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 8<<10 {
			t.Errorf("%s is %d bytes, over MaxBytes", f, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	got := readDir(t, dir)
	if len(got) != len(evs) {
		t.Fatalf("got %d lines, want %d", len(got), len(evs))
	}
	for i, r := range got {
		if r.UID != evs[i].UID {
			t.Fatalf("line %d: uid %s, want %s (order across files)", i, r.UID, evs[i].UID)
		}
	}
}

func TestRotationByAge(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 11, 27, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s, err := ndjson.New(ndjson.Config{Dir: dir, MaxAge: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	evs := sinktest.Events(3)
	count := func() int { files, _ := s.Files(); return len(files) }
	mustWrite(t, s, evs[:1])
	advance(59 * time.Minute)
	mustWrite(t, s, evs[1:2])
	if n := count(); n != 1 {
		t.Fatalf("a 59-minute-old file was rotated: %d files, want 1", n)
	}
	advance(time.Minute)
	mustWrite(t, s, evs[2:])
	if n := count(); n != 2 {
		t.Fatalf("an hour-old file was not rotated: %d files, want 2", n)
	}
}

func mustWrite(t *testing.T, s collector.Sink, batch []collector.Event) {
	t.Helper()
	for i, o := range s.Write(context.Background(), batch) {
		if o.Status != collector.Delivered {
			t.Fatalf("event %d: %s %s", i, o.Status, o.Reason)
		}
	}
}

func TestGzipClosedFiles(t *testing.T) {
	dir := t.TempDir()
	// An earlier process left a closed file and an interrupted compression.
	old := filepath.Join(dir, "sandtrail-events-20250101T000000.000000000Z.ndjson")
	oldEv := sinktest.Events(1)[0]
	if err := os.WriteFile(old, append(bytes.Clone(oldEv.Data), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "sandtrail-events-20250101T000000.000000000Z.gz.tmp")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ndjson.New(ndjson.Config{Dir: dir, MaxBytes: 4 << 10, Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	evs := sinktest.Events(20)
	for _, o := range s.Write(context.Background(), evs) {
		if o.Status != collector.Delivered {
			t.Fatal(o.Reason)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if !strings.HasSuffix(f, ".ndjson.gz") && filepath.Base(f) != ".lock" {
			t.Errorf("left after Close: %s (want only .ndjson.gz files)", f)
		}
	}
	got := readDir(t, dir)
	if len(got) != 21 || got[0].UID != oldEv.UID {
		t.Fatalf("got %d events (first %s), want 21 starting with the old file's", len(got), got[0].UID)
	}
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	a, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ndjson.New(ndjson.Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second sink on one directory: got %v, want an error", err)
	}
	a.Close(context.Background())
	b, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		t.Fatalf("after Close the directory is free: %v", err)
	}
	b.Close(context.Background())
}

func TestMultilineJSONIsCompacted(t *testing.T) {
	dir := t.TempDir()
	s, err := ndjson.New(ndjson.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ev := sinktest.Events(1)[0]
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, ev.Data, "", "  "); err != nil {
		t.Fatal(err)
	}
	ev.Data = pretty.Bytes()
	s.Write(context.Background(), []collector.Event{ev})
	s.Close(context.Background())
	got := readDir(t, dir)
	if len(got) != 1 || got[0].UID != ev.UID {
		t.Fatalf("got %d lines, want the one event on one line", len(got))
	}
}

func TestDecode(t *testing.T) {
	var doc yaml.Node
	src := "dir: /var/lib/sandtrail/events\nmax_bytes: 64MiB\nmax_age: 1h\ngzip: true\nmax_byte: 3\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	_, err := ndjson.Decode(&doc, "c.yaml")
	if err == nil || err.Error() != "c.yaml:5:1: max_byte: unknown key (did you mean max_bytes?)" {
		t.Fatalf("got %v", err)
	}
	doc = yaml.Node{}
	_ = yaml.Unmarshal([]byte(src[:strings.Index(src, "max_byte:")]), &doc)
	c, err := ndjson.Decode(&doc, "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBytes != 64<<20 || c.MaxAge != time.Hour || !c.Gzip || c.Dir != "/var/lib/sandtrail/events" {
		t.Fatalf("got %+v", c)
	}
}
