package emitter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
)

// Environment of the child modes.
const (
	envSpoolDir = "SANDTRAIL_TEST_SPOOL_DIR"
	envNATSURL  = "SANDTRAIL_TEST_NATS_URL"
	envReadOnly = "SANDTRAIL_TEST_DIR_READONLY"
	envOtherOwn = "SANDTRAIL_TEST_DIR_OTHER_OWNER"
	envWritable = "SANDTRAIL_TEST_DIR_WRITABLE"
	nobody      = 65534
)

// TestChildProcess is not a test of its own: it is the body of the test
// binary re-executed by startChild, in the mode childEnv names. Without
// that variable it returns at once.
func TestChildProcess(t *testing.T) {
	switch mode := os.Getenv(childEnv); mode {
	case "":
		return
	case "emit":
		childEmit(t)
	case "republish":
		childRepublish(t)
	case "permissions":
		childPermissions(t)
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
}

// waitForKill blocks until the parent kills this process (or, should the
// parent die, closes stdin).
func waitForKill(t *testing.T) {
	io.Copy(io.Discard, os.Stdin)
	t.Fatal("stdin closed: the parent should have killed this process")
}

// childEmit emits one event into the spool, with no publisher or with one
// whose server is unreachable, says so, and waits to be killed.
func childEmit(t *testing.T) {
	var pub emitter.Publisher
	if url := os.Getenv(envNATSURL); url != "" {
		nc, err := bus.Connect(context.Background(), bus.ConnConfig{URLs: []string{url}, RetryOnFailedConnect: true}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		pub = js
	}
	em := newEmitterCfg(t, emitterConfig(t, os.Getenv(envSpoolDir), pub))
	if pub != nil {
		go em.Run(context.Background()) // killed with the process
	}
	ev := finding("seccomp")
	if err := em.Trail("run-kill").Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	fmt.Println("emitted", ev.Metadata.UID)
	waitForKill(t)
}

// holdAcks publishes for real but never hands the PubAck to the emitter:
// the event is in the stream and still unacknowledged in the spool, the
// window in which a kill makes the next process publish it again.
type holdAcks struct {
	js jetstream.JetStream
	mu sync.Mutex // serialises the report lines
}

func (h *holdAcks) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := h.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return nil, err
	}
	id := msg.Header.Get(jetstream.MsgIDHeader)
	go func() { // ends with the process, which is killed
		select {
		case ack := <-f.Ok():
			h.mu.Lock()
			fmt.Printf("stored %s seq %d duplicate %t\n", id, ack.Sequence, ack.Duplicate)
			h.mu.Unlock()
		case err := <-f.Err():
			h.mu.Lock()
			fmt.Printf("publish-error %s %v\n", id, err)
			h.mu.Unlock()
		}
	}()
	return heldFuture{f}, nil
}

// heldFuture never resolves: its channels are nil.
type heldFuture struct{ jetstream.PubAckFuture }

func (heldFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (heldFuture) Err() <-chan error            { return nil }

// childRepublish opens the spool of a killed process, publishes what it
// claims, and waits to be killed before acknowledging it in the spool.
func childRepublish(t *testing.T) {
	nc, err := bus.Connect(context.Background(), bus.ConnConfig{URLs: []string{os.Getenv(envNATSURL)}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := emitterConfig(t, os.Getenv(envSpoolDir), &holdAcks{js: js})
	cfg.AckTimeout = time.Hour // wait for the held ack until killed
	em := newEmitterCfg(t, cfg)
	fmt.Println("recovered", em.Recovery().Records)
	go em.Run(context.Background()) // killed with the process
	waitForKill(t)
}

// childPermissions runs as uid 65534 (root ignores permission bits) and
// checks the errors of unwritable and foreign spool directories, and that a
// directory turning read-only under an open Emitter costs no spooled event.
func childPermissions(t *testing.T) {
	if os.Geteuid() != nobody {
		t.Fatalf("euid %d, want %d", os.Geteuid(), nobody)
	}
	ctx := context.Background()

	ro := os.Getenv(envReadOnly)
	_, err := emitter.New(emitterConfig(t, ro, nil))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), ro) {
		t.Errorf("New on a read-only directory: got %v, want a permission error naming %s", err, ro)
	}
	fmt.Println("read-only:", err)

	other := os.Getenv(envOtherOwn)
	_, err = emitter.New(emitterConfig(t, other, nil))
	if want := "owned by uid 0, not by the effective uid 65534"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("New on another user's directory: got %v, want %q", err, want)
	}
	fmt.Println("other owner:", err)

	dir := os.Getenv(envWritable)
	cfg := emitterConfig(t, dir, nil)
	cfg.Spool.MaxBytes, cfg.Spool.SegmentBytes = 1<<20, 4<<10 // rotate every few events
	em := newEmitterCfg(t, cfg)
	tr := em.Trail("run-perm")
	if err := tr.Emit(ctx, finding("control_1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	// Events fit in the open segment until it must rotate, which needs a
	// new file in the directory.
	err = nil
	for i := 2; err == nil; i++ {
		if i > 50 {
			t.Fatal("Emit never needed a new segment")
		}
		err = tr.Emit(ctx, finding("control_"+strconv.Itoa(i)))
	}
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "new segment in "+dir) {
		t.Errorf("Emit needing a new segment in a read-only directory: got %v, want a permission error naming it", err)
	}
	fmt.Println("rotation:", err)
	n := tr.Seq()
	if em.Pending() != n {
		t.Errorf("after the refused Emit: %d pending, want %d (the events spooled before it)", em.Pending(), n)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := tr.Emit(ctx, finding("control_after")); err != nil {
		t.Errorf("Emit once the directory is writable again: %v", err)
	}
	n = tr.Seq()
	err = em.Close(ctx)
	if want := fmt.Sprintf("%d events left in the spool", n); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Close: got %v, want %q", err, want)
	}
	fmt.Println("spooled", n)
}

// TestKilledAfterEmit: a process is SIGKILLed after Emit returned and
// before anything was published. The next process to open the spool
// publishes the event, exactly once, with Nats-Msg-Id = metadata.uid.
func TestKilledAfterEmit(t *testing.T) {
	for _, unreachable := range []bool{false, true} {
		name := "no publisher"
		if unreachable {
			name = "unreachable server"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{envSpoolDir + "=" + dir}
			if unreachable {
				env = append(env, envNATSURL+"=nats://127.0.0.1:"+strconv.Itoa(freePort(t)))
			}
			a := startChild(t, "", "emit", nil, env...)
			uid := a.waitLine("emitted ", 60*time.Second)
			a.kill()

			e := newEnv(t)
			em := newEmitterCfg(t, emitterConfig(t, dir, e.js))
			if rec := em.Recovery(); rec.Records != 1 || len(rec.Claimed) != 1 || len(rec.Damage) != 0 {
				t.Errorf("Recovery: got %+v, want 1 record in 1 claimed segment, no damage", rec)
			}
			runEmitter(t, em)
			flush(t, em, 30*time.Second)
			got := readEvents(t, e.js)
			checkDelivery(t, got, map[string]int{"run-kill": 1})
			if len(got) == 1 && got[0].UID != uid {
				t.Errorf("stored uid %s, want %s (the one the killed process emitted)", got[0].UID, uid)
			}
			if st := em.Stats(); st.Published != 1 || st.Duplicate != 0 {
				t.Errorf("stats %+v, want 1 published, no duplicate", st)
			}
		})
	}
}

// TestKilledTwice: the process that recovers a killed process's spool is
// itself killed after its publish reached the stream but before the spool
// recorded the acknowledgement. The third process publishes the event
// again; the stream drops it by its message id and still holds it once.
func TestKilledTwice(t *testing.T) {
	dir := t.TempDir()
	a := startChild(t, "", "emit", nil, envSpoolDir+"="+dir)
	uid := a.waitLine("emitted ", 60*time.Second)
	a.kill()

	e := newEnv(t)
	b := startChild(t, "", "republish", nil, envSpoolDir+"="+dir, envNATSURL+"="+e.srv.ClientURL())
	if n := b.waitLine("recovered ", 60*time.Second); n != "1" {
		t.Fatalf("second process recovered %s records, want 1", n)
	}
	stored := b.waitLine("stored "+uid+" ", 60*time.Second)
	b.kill()
	if !strings.HasSuffix(stored, "duplicate false") {
		t.Errorf("second process's publish: %q, want a first store", stored)
	}
	if got := readEvents(t, e.js); len(got) != 1 {
		t.Fatalf("after the second process: %d messages, want 1", len(got))
	}

	em := newEmitterCfg(t, emitterConfig(t, dir, e.js))
	if rec := em.Recovery(); rec.Records != 1 {
		t.Errorf("third process: Recovery %+v, want the unacknowledged record", rec)
	}
	runEmitter(t, em)
	flush(t, em, 30*time.Second)
	if st := em.Stats(); st.Published != 1 || st.Duplicate != 1 {
		t.Errorf("third process: stats %+v, want its one publish acknowledged as a duplicate", st)
	}
	got := readEvents(t, e.js)
	checkDelivery(t, got, map[string]int{"run-kill": 1})
	if len(got) == 1 && got[0].UID != uid {
		t.Errorf("stored uid %s, want %s", got[0].UID, uid)
	}
}

// burst emits total events, batch at a time, on each of runs concurrently,
// and returns once every Emit returned.
func burst(t *testing.T, em *emitter.Emitter, runs []string, total, batch int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(runs))
	for _, run := range runs {
		wg.Go(func() {
			tr := em.Trail(run)
			for i := 0; i < total; i += batch {
				evs := make([]schema.Event, 0, batch)
				for j := i; j < min(i+batch, total); j++ {
					evs = append(evs, finding("control_"+strconv.Itoa(j)))
				}
				if err := tr.Emit(context.Background(), evs...); err != nil {
					errs <- fmt.Errorf("%s: %w", run, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// waitPublished waits until at least n events were acknowledged.
func waitPublished(t *testing.T, em *emitter.Emitter, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := poll(ctx, 5*time.Millisecond, func() error {
		if p := em.Stats().Published; p < n {
			return fmt.Errorf("%d of %d published", p, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServerRestartMidBurst restarts the server (same port, same store)
// while two runs emit 10,000 events and the publisher is publishing them.
// Every event arrives, none twice, each run in order.
func TestServerRestartMidBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("emits 10,000 events through three server restarts (about 6 s, 15 s under -race); -short")
	}
	store := t.TempDir()
	srv := startServerCfg(t, embedded.Config{StoreDir: store})
	url := srv.ClientURL()
	nc := dial(t, bus.ConnConfig{URLs: []string{url}})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, js, streams(1))
	em := newEmitterCfg(t, emitterConfig(t, t.TempDir(), js))
	runEmitter(t, em)

	runs := []string{"run-a", "run-b"}
	const perRun = 5000
	done := make(chan struct{})
	go func() {
		defer close(done)
		burst(t, em, runs, perRun, 10)
	}()
	defer func() { <-done }() // also when the test fails: burst uses t
	for _, at := range []uint64{1500, 4000, 6500} {
		waitPublished(t, em, at)
		before := em.Stats()
		if before.Published >= 2*perRun {
			t.Fatalf("everything was published before the restart: the test proves nothing")
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv = startServerCfg(t, embedded.Config{Listen: hostPort(url), StoreDir: store})
		t.Logf("restarted the server after %d of %d events emitted, %d published", before.Emitted, 2*perRun, before.Published)
	}
	<-done
	flush(t, em, 120*time.Second)
	checkDelivery(t, readEvents(t, js), map[string]int{"run-a": perRun, "run-b": perRun})
	t.Logf("stats %+v; async publishes still pending in the client: %d", em.Stats(), js.PublishAsyncPending())
}

// TestClusterLeaderLost shuts the stream leader of a 3-node cluster down
// while 3,000 events are published to an R3 stream. A surviving node holds
// every event, once.
func TestClusterLeaderLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster and waits for a re-election (about 10 s); -short")
	}
	servers := startCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc := dial(t, bus.ConnConfig{URLs: urls})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, js, streams(3))
	leader := streamLeader(t, js)
	em := newEmitterCfg(t, emitterConfig(t, t.TempDir(), js))
	runEmitter(t, em)

	runs := []string{"run-c1", "run-c2"}
	const perRun = 1500
	done := make(chan struct{})
	go func() {
		defer close(done)
		burst(t, em, runs, perRun, 10)
	}()
	defer func() { <-done }() // also when the test fails: burst uses t
	waitPublished(t, em, 500)
	before := em.Stats()
	i := slices.IndexFunc(servers, func(s *embedded.Server) bool { return s.Name() == leader })
	if i < 0 {
		t.Fatalf("leader %q is none of the servers", leader)
	}
	connected := nc.ConnectedServerName()
	start := time.Now()
	if err := servers[i].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("shut the stream leader %s down (publisher connected to %s) after %d of %d events emitted, %d published", leader, connected, before.Emitted, 2*perRun, before.Published)
	<-done
	flush(t, em, 120*time.Second)
	t.Logf("all acknowledged %v after the leader went; stats %+v; async publishes still pending in the client: %d",
		time.Since(start).Round(time.Millisecond), em.Stats(), js.PublishAsyncPending())

	survivor := servers[(i+1)%len(servers)]
	js2, err := jetstream.New(dial(t, bus.ConnConfig{URLs: []string{survivor.ClientURL()}}))
	if err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, js2)
	checkOnce(t, got, map[string]int{"run-c1": perRun, "run-c2": perRun})
	// Not asserted: across a leader change the stream order of a run can
	// differ from the spool order. Publishes that found no stream leader
	// fail (nats.go itself re-publishes them 250 ms later), while later
	// publishes of the same pipelined batch reach the new leader first.
	// metadata.sequence is what orders a run.
	if n, first := orderViolations(got); n > 0 {
		t.Logf("%d events stored out of their run's order; first: %s", n, first)
	}
}

// frameOffsets returns the offsets of the record frames of a segment file
// (magic 0xFE 'S' 'R' 'C' after the 128-byte header; JSON never contains
// 0xFE).
func frameOffsets(data []byte) []int64 {
	var offs []int64
	for off := 128; ; {
		i := bytes.Index(data[off:], []byte{0xFE, 'S', 'R', 'C'})
		if i < 0 {
			return offs
		}
		offs = append(offs, int64(off+i))
		off += i + 4
	}
}

// TestDamagedSpool: events are spooled with no bus, then the segment file is
// torn (truncated inside the last record) or corrupted (a byte flipped in
// the middle record). The next Emitter reports the damage in Recovery and
// publishes every intact event.
func TestDamagedSpool(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, path string, offs []int64)
		torn    bool
		damaged int   // which record (0-based)
		want    []int // sequences that must arrive, in order
	}{
		{
			name: "torn tail",
			damage: func(t *testing.T, path string, offs []int64) {
				if err := os.Truncate(path, offs[4]+40); err != nil {
					t.Fatal(err)
				}
			},
			torn: true, damaged: 4, want: []int{1, 2, 3, 4},
		},
		{
			name: "corrupt record",
			damage: func(t *testing.T, path string, offs []int64) {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{'#'}, offs[2]+200); err != nil {
					t.Fatal(err)
				}
			},
			damaged: 2, want: []int{1, 2, 4, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			em := newEmitterCfg(t, emitterConfig(t, dir, nil))
			tr := em.Trail("run-damaged")
			for i := range 5 {
				if err := tr.Emit(context.Background(), finding("control_"+strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := em.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "5 events left in the spool") {
				t.Fatalf("Close: got %v, want it to say 5 events are left", err)
			}
			segs, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
			if err != nil || len(segs) != 1 {
				t.Fatalf("segments %v (%v), want 1", segs, err)
			}
			data, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			offs := frameOffsets(data)
			if len(offs) != 5 {
				t.Fatalf("%d frames in the segment, want 5", len(offs))
			}
			tt.damage(t, segs[0], offs)

			e := newEnv(t)
			em2 := newEmitterCfg(t, emitterConfig(t, dir, e.js))
			rec := em2.Recovery()
			if rec.Records != 4 || len(rec.Damage) != 1 {
				t.Fatalf("Recovery: got %+v, want 4 records and 1 damaged range", rec)
			}
			d := rec.Damage[0]
			t.Logf("reported: %v", d)
			if d.File != segs[0] || d.Offset != offs[tt.damaged] || d.TornTail != tt.torn {
				t.Errorf("damage %+v, want file %s, offset %d, torn tail %t", d, segs[0], offs[tt.damaged], tt.torn)
			}
			runEmitter(t, em2)
			flush(t, em2, 30*time.Second)
			var seqs []int
			for _, ev := range readEvents(t, e.js) {
				seqs = append(seqs, ev.Seq)
				if ev.MsgID != ev.UID {
					t.Errorf("Nats-Msg-Id %s != uid %s", ev.MsgID, ev.UID)
				}
			}
			if !slices.Equal(seqs, tt.want) {
				t.Errorf("published sequences %v, want %v", seqs, tt.want)
			}
		})
	}
}

// TestSpoolDirectoryPermissions runs, as uid 65534 in a re-executed test
// binary, against a read-only spool directory, another user's directory,
// and a directory made read-only under an open Emitter; then, as root,
// publishes what that child spooled.
func TestSpoolDirectoryPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as uid 65534 (and as non-root, permission bits apply to the test itself)")
	}
	base := t.TempDir()
	// The test's temporary directory is 0700; the child must enter it.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := copyBinary(t, base)
	ro, other, rw := filepath.Join(base, "read-only"), filepath.Join(base, "other-owner"), filepath.Join(base, "writable")
	for _, d := range []struct {
		path string
		mode os.FileMode
		uid  int
	}{{ro, 0o500, nobody}, {other, 0o700, 0}, {rw, 0o700, nobody}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, d.uid, d.uid); err != nil {
			t.Fatal(err)
		}
	}
	c := startChild(t, bin, "permissions", &syscall.Credential{Uid: nobody, Gid: nobody},
		envReadOnly+"="+ro, envOtherOwn+"="+other, envWritable+"="+rw)
	for _, p := range []string{"read-only:", "other owner:", "rotation:"} {
		t.Logf("%s %s", p, c.waitLine(p, 60*time.Second))
	}
	n, err := strconv.Atoi(c.waitLine("spooled ", 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c.finish(30 * time.Second)

	// Hand the directory to root, which opens it next.
	err = filepath.WalkDir(rw, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, 0, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	em := newEmitterCfg(t, emitterConfig(t, rw, e.js))
	if rec := em.Recovery(); rec.Records != n || len(rec.Damage) != 0 {
		t.Errorf("Recovery %+v, want the %d events the child spooled, no damage", rec, n)
	}
	runEmitter(t, em)
	flush(t, em, 30*time.Second)
	checkDelivery(t, readEvents(t, e.js), map[string]int{"run-perm": n})
}

// TestSpoolFull: with the bus down, Emit fills a small spool and then
// returns an error wrapping spool.ErrFull; nothing spooled is dropped, and
// once the server is back every event is published and Emit succeeds again.
func TestSpoolFull(t *testing.T) {
	store := t.TempDir()
	srv := startServerCfg(t, embedded.Config{StoreDir: store})
	url := srv.ClientURL()
	nc := dial(t, bus.ConnConfig{URLs: []string{url}})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, js, streams(1))
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := emitterConfig(t, t.TempDir(), js)
	cfg.Spool.MaxBytes = 16 << 10 // 4 segments of 4 KiB
	em := newEmitterCfg(t, cfg)
	runEmitter(t, em)

	ctx := context.Background()
	tr := em.Trail("run-full")
	for i := 0; err == nil; i++ {
		if i > 100 {
			t.Fatal("a 16 KiB spool took 100 events")
		}
		err = tr.Emit(ctx, finding("control_"+strconv.Itoa(i)))
	}
	if !errors.Is(err, spool.ErrFull) {
		t.Fatalf("Emit into a full spool: got %v, want an error wrapping spool.ErrFull", err)
	}
	t.Logf("after %d events: %v", tr.Seq(), err)
	n := tr.Seq()
	if err := tr.Emit(ctx, finding("still_full")); !errors.Is(err, spool.ErrFull) {
		t.Errorf("second Emit into a full spool: got %v, want ErrFull", err)
	}
	if em.Pending() != n || tr.Seq() != n {
		t.Errorf("%d pending, sequence %d; want %d each: the refused batches used nothing", em.Pending(), tr.Seq(), n)
	}
	if st := em.Stats(); st.Emitted != uint64(n) || st.Rejected != 2 || st.Published != 0 {
		t.Errorf("stats %+v, want %d emitted, 2 rejected, none published", st, n)
	}

	startServerCfg(t, embedded.Config{Listen: hostPort(url), StoreDir: store})
	flush(t, em, 60*time.Second)
	if err := tr.Emit(ctx, finding("room_again")); err != nil {
		t.Errorf("Emit once the spool drained: %v", err)
	}
	flush(t, em, 30*time.Second)
	checkDelivery(t, readEvents(t, js), map[string]int{"run-full": n + 1})
}

// TestBadBusConfigKeepsEvents: the bus refuses the connection (wrong
// password, TLS name mismatch). The connect error names the cause; events
// emitted meanwhile stay in the spool, Close says how many, and a later
// Emitter with a good configuration publishes them.
func TestBadBusConfigKeepsEvents(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name      string
		server    string // nats-server configuration
		bad, good bus.ConnConfig
		wantErr   error
		wantText  []string
	}{
		{
			name:     "wrong password",
			server:   `authorization { user: "supervisor", password: "supervisor-good-password" }`,
			bad:      bus.ConnConfig{User: "supervisor", Password: "not-the-password"},
			good:     bus.ConnConfig{User: "supervisor", Password: "supervisor-good-password"},
			wantErr:  bus.ErrAuthorization,
			wantText: []string{"authorization failed", "User/Password"},
		},
		{
			name:     "TLS name mismatch",
			server:   fmt.Sprintf("tls {\n cert_file: %q\n key_file: %q\n timeout: 2\n}\n", pki.ServerCert, pki.ServerKey),
			bad:      bus.ConnConfig{TLS: bus.TLSConfig{CAFile: pki.CAFile, ServerName: "evil.example"}},
			good:     bus.ConnConfig{TLS: bus.TLSConfig{CAFile: pki.CAFile, ServerName: testServerName}},
			wantErr:  bus.ErrTLS,
			wantText: []string{"certificate/name mismatch", "evil.example", "TLS.ServerName"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServerCfg(t, embedded.Config{ConfigFile: writeConfig(t, tt.server)})
			urls := []string{srv.ClientURL()}
			dir := t.TempDir()

			bad := tt.bad
			bad.URLs, bad.ConnectTimeout, bad.RetryOnFailedConnect = urls, 5*time.Second, true
			nc, err := bus.Connect(context.Background(), bad, testLogger(t))
			if err == nil {
				nc.Close()
				t.Fatal("Connect: got no error")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Connect: got %q, want errors.Is %v", err, tt.wantErr)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Connect: got %q, want it to contain %q", err, w)
				}
			}
			t.Logf("connect error: %v", err)

			// The sandbox goes on meanwhile, recording without a bus.
			em := newEmitterCfg(t, emitterConfig(t, dir, nil))
			tr := em.Trail("run-offline")
			for i := range 3 {
				if err := tr.Emit(context.Background(), finding("control_"+strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			if em.Pending() != 3 {
				t.Errorf("Pending = %d, want 3", em.Pending())
			}
			if err := em.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "3 events left in the spool") {
				t.Errorf("Close: got %v, want it to say 3 events are left", err)
			}

			good := tt.good
			good.URLs = urls
			js, err := jetstream.New(dial(t, good))
			if err != nil {
				t.Fatal(err)
			}
			ensureStreams(t, js, streams(1))
			em2 := newEmitterCfg(t, emitterConfig(t, dir, js))
			if rec := em2.Recovery(); rec.Records != 3 {
				t.Errorf("Recovery %+v, want 3 records", rec)
			}
			runEmitter(t, em2)
			flush(t, em2, 30*time.Second)
			checkDelivery(t, readEvents(t, js), map[string]int{"run-offline": 3})
		})
	}
}

// disconnectAt is a jetstream.JetStream (so the emitter sees its
// connection) that, right after the at-th publish, stops the server and
// waits until the client knows, then lets the server start again in the
// background.
type disconnectAt struct {
	jetstream.JetStream
	n    int
	at   int
	stop func()
}

func (d *disconnectAt) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := d.JetStream.PublishMsgAsync(msg, opts...)
	if d.n++; d.n == d.at { // only Run publishes: no lock needed
		d.stop()
	}
	return f, err
}

// TestDisconnectMidBatch: the connection drops in the middle of a batch of
// publishes, after some of them were written to the dying socket. The rest
// of the batch must not go into nats.go's reconnect buffer, which would
// store them ahead of the retried earlier ones.
func TestDisconnectMidBatch(t *testing.T) {
	store := t.TempDir()
	srv := startServerCfg(t, embedded.Config{StoreDir: store})
	url := srv.ClientURL()
	nc := dial(t, bus.ConnConfig{URLs: []string{url}})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, js, streams(1))

	// Spool first, so that the publisher sends full batches of 256.
	dir := t.TempDir()
	offline := newEmitterCfg(t, emitterConfig(t, dir, nil))
	const total = 1000
	burst(t, offline, []string{"run-mid"}, total, 50)
	if err := offline.Close(context.Background()); err == nil {
		t.Fatal("Close: want the events left in the spool")
	}

	restarted := make(chan struct{})
	pub := &disconnectAt{JetStream: js, at: 256 + 100, stop: func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		for nc.Status() == nats.CONNECTED {
			time.Sleep(time.Millisecond)
		}
		go func() {
			defer close(restarted)
			startServerAsync(t, embedded.Config{Listen: hostPort(url), StoreDir: store})
		}()
	}}
	em := newEmitterCfg(t, emitterConfig(t, dir, pub))
	runEmitter(t, em)
	<-restarted
	flush(t, em, 60*time.Second)
	checkDelivery(t, readEvents(t, js), map[string]int{"run-mid": total})
	t.Logf("stats %+v", em.Stats())
}

// TestUnansweredPublishes: publishes that the server never answers (here a
// plain subscriber takes the subject and no stream exists; in production a
// stream leader lost mid-publish) time out and are retried. With the
// JetStream context made as Config.Publisher says
// (jetstream.WithPublishAsyncTimeout), the abandoned publishes leave the
// client's pending set, so once a stream answers everything is published.
// (Without the timeout they stay pending forever; once they fill the
// client's max pending, every later publish fails and Flush never returns.)
func TestUnansweredPublishes(t *testing.T) {
	srv := startServerCfg(t, embedded.Config{})
	nc := dial(t, bus.ConnConfig{URLs: []string{srv.ClientURL()}})
	const ackTimeout = 300 * time.Millisecond
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(25), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(bus.EventsWildcard) // interest, but never a reply
	if err != nil {
		t.Fatal(err)
	}
	cfg := emitterConfig(t, t.TempDir(), js)
	cfg.AckTimeout = ackTimeout
	em := newEmitterCfg(t, cfg)
	runEmitter(t, em)
	burst(t, em, []string{"run-unanswered"}, 10, 10)

	// Enough attempts to exceed the client's max pending of 25 publishes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := poll(ctx, 10*time.Millisecond, func() error {
		if r := em.Stats().Retries; r < 4 {
			return fmt.Errorf("%d retries", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, js, streams(1))
	flush(t, em, 30*time.Second)
	checkDelivery(t, readEvents(t, js), map[string]int{"run-unanswered": 10})
	if n := js.PublishAsyncPending(); n != 0 {
		t.Errorf("%d publishes still pending in the client", n)
	}
}
