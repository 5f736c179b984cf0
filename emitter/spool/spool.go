package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Errors callers match with errors.Is. They are returned wrapped with the
// context (directory, sizes, position).
var (
	// ErrFull: appending would grow the spool directory beyond
	// Config.MaxBytes. Nothing was appended and nothing was dropped.
	ErrFull = errors.New("spool: full")
	// ErrTooLarge: a record or a batch can never fit (larger than 16 MiB
	// or than a segment).
	ErrTooLarge = errors.New("spool: too large")
	// ErrClosed: the Spool was closed.
	ErrClosed = errors.New("spool: closed")
	// ErrUnknownPosition: Ack was given a position that this Spool did
	// not hand out.
	ErrUnknownPosition = errors.New("spool: unknown position")
)

// FullPolicy says what Append does when the spool is full.
type FullPolicy int

const (
	// RefuseNew returns an error wrapping ErrFull at once (the default).
	RefuseNew FullPolicy = iota
	// Block waits until acknowledgements free enough space, the context
	// ends (the error wraps ErrFull and the context's error) or the Spool
	// is closed.
	Block
)

func (p FullPolicy) String() string {
	switch p {
	case RefuseNew:
		return "refuse-new"
	case Block:
		return "block"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(p))
}

// Config configures Open. The zero value of every field but Dir means the
// default written in its comment.
type Config struct {
	// Dir is the spool directory, shared by every process of one user.
	// It is created with mode 0700 if missing; it must belong to the
	// effective user. Required.
	Dir string
	// MaxBytes bounds the size of all segment files in Dir, those of other
	// live processes included. Default 256 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a writer starts a new segment
	// file. Default 16 MiB, or MaxBytes/4 if that is smaller; at most
	// MaxBytes/4, so that acknowledgements can always free room.
	SegmentBytes int64
	// Full is the policy when appending would exceed MaxBytes. Default
	// RefuseNew.
	Full FullPolicy
	// ClaimInterval is how often an idle Next looks for segments left by
	// processes that are gone, and how stale the size of other processes'
	// segments may get. Default 1s.
	ClaimInterval time.Duration
	// Logger receives recovery reports and damaged records. Default: no
	// logging.
	Logger zerolog.Logger
	// Now is the clock used to name segments and to age directory scans.
	// Default time.Now.
	Now func() time.Time
}

const (
	defaultMaxBytes     = 256 << 20
	defaultSegmentBytes = 16 << 20
	minSegmentBytes     = 4 << 10
)

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("spool: Config.Dir is empty")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = min(defaultSegmentBytes, c.MaxBytes/4)
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.SegmentBytes < minSegmentBytes:
		return c, fmt.Errorf("spool: SegmentBytes %d is below %d (MaxBytes %d)", c.SegmentBytes, minSegmentBytes, c.MaxBytes)
	case c.SegmentBytes > c.MaxBytes/4:
		return c, fmt.Errorf("spool: SegmentBytes %d exceeds MaxBytes/4 (%d)", c.SegmentBytes, c.MaxBytes/4)
	case c.Full != RefuseNew && c.Full != Block:
		return c, fmt.Errorf("spool: unknown %v", c.Full)
	case c.ClaimInterval < 0:
		return c, fmt.Errorf("spool: negative ClaimInterval %v", c.ClaimInterval)
	}
	c.Dir = filepath.Clean(c.Dir)
	return c, nil
}

// Spool is a durable, bounded, multi-process spool of records. See the
// package documentation for the guarantees. All methods are safe for
// concurrent use. A Spool starts no goroutines.
type Spool struct {
	cfg Config
	log zerolog.Logger
	pid int

	// leader is the group-commit token (capacity 1): the goroutine that
	// holds it writes and syncs groups and alone touches active's file
	// tail. Close takes it for good.
	leader  chan struct{}
	readMu  sync.Mutex // serialises Next: reader I/O and claiming
	readBuf []byte     // Next's read window, kept between calls; guarded by readMu
	ackMu   sync.Mutex // serialises ack persistence and segment removal

	// Lock order: leader, readMu, ackMu, mu.
	mu        sync.Mutex
	closed    bool
	done      chan struct{} // closed by Close
	segs      []*segment    // owned segments, by name (creation time)
	byName    map[string]*segment
	gone      map[string]bool // segments this Spool deleted: late acks are no-ops
	active    *segment        // where appends go
	group     *group          // open group accepting batches
	reserved  int64           // bytes admitted by reserve, not yet committed
	ownBytes  int64           // size of owned segment files
	foreign   int64           // size of other processes' segments, last observed
	foreignAt time.Time
	claimAt   time.Time
	lastNanos int64         // timestamp in the newest segment name
	appended  chan struct{} // closed and replaced when records become readable
	freed     chan struct{} // closed and replaced when space is freed

	stats struct{ appended, syncs, refused, damaged, claimed atomic.Uint64 }

	// testSplit, if set, is called between the two halves of every write
	// (tests use it to make kill -9 tear records).
	testSplit func()
}

// Recovery reports what Open found left by writers that are gone.
type Recovery struct {
	Claimed []string // segment files claimed, by base name
	Records int      // unacknowledged records in them, to be delivered
	Damage  []Damage // ranges skipped
	// Errors lists segment files that could not be claimed (another
	// user's file, an unknown format version, an I/O error). They are
	// left in place and retried by later claims.
	Errors []error
}

// Damage is a byte range of a segment file that holds no valid record. It
// is skipped; the records before and after it are delivered.
type Damage struct {
	File     string // path of the segment file
	Offset   int64
	Length   int64
	Reason   string // "truncated record", "bad header", "checksum mismatch", "bad segment header"
	TornTail bool   // the range runs to the end of the file (an interrupted append)
}

func (d Damage) String() string {
	kind := "corrupt record"
	if d.TornTail {
		kind = "torn tail"
	}
	return fmt.Sprintf("%s at %s offset %d (%d bytes skipped): %s", kind, d.File, d.Offset, d.Length, d.Reason)
}

// Stats is a snapshot of the spool's counters.
type Stats struct {
	Bytes    int64  // size of the segment files this Spool owns
	DirBytes int64  // Bytes, plus other processes' segments as last observed: compared with MaxBytes
	MaxBytes int64  // the configured limit
	Pending  int    // owned records not yet acknowledged
	Segments int    // segment files owned
	Appended uint64 // records appended since Open
	Syncs    uint64 // fdatasync calls of group commits
	Refused  uint64 // Append calls that returned ErrFull
	Damaged  uint64 // damaged ranges skipped (each also logged)
	Claimed  uint64 // segments claimed from processes that are gone
}

// Open opens (creating it if needed) the spool directory, starts a
// segment for this process's appends, and claims the segments of
// processes that are gone. The Recovery lists what was claimed and the
// damage found; each damaged range is also logged.
func Open(cfg Config) (*Spool, Recovery, error) {
	if err := supported(); err != nil {
		return nil, Recovery{}, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, Recovery{}, err
	}
	if err := prepareDir(cfg); err != nil {
		return nil, Recovery{}, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("spool", cfg.Dir).Logger(),
		pid:      os.Getpid(),
		leader:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		byName:   map[string]*segment{},
		gone:     map[string]bool{},
		appended: make(chan struct{}),
		freed:    make(chan struct{}),
	}
	seg, err := s.newSegment()
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("open spool: create segment: %w", err)
	}
	s.mu.Lock()
	s.addLocked(seg)
	s.active = seg
	s.mu.Unlock()
	s.readMu.Lock()
	rec, err := s.claim()
	s.readMu.Unlock()
	if err != nil {
		return nil, rec, errors.Join(fmt.Errorf("open spool: %w", err), s.Close())
	}
	if len(rec.Claimed) > 0 {
		s.log.Info().Int("segments", len(rec.Claimed)).Int("records", rec.Records).Int("damaged", len(rec.Damage)).Msg("claimed segments of processes that are gone")
	}
	return s, rec, nil
}

func prepareDir(cfg Config) error {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", cfg.Dir)
	}
	if err := checkOwner(cfg.Dir, fi); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(cfg.Dir, 0o700); err != nil {
			return err
		}
		cfg.Logger.Warn().Str("spool", cfg.Dir).Stringer("was", fi.Mode().Perm()).Msg("spool directory mode tightened to 0700")
	}
	return nil
}

// newSegment creates a segment named after a timestamp later than any
// earlier one of this Spool, so its segments sort in creation order.
func (s *Spool) newSegment() (*segment, error) {
	s.mu.Lock()
	nanos := max(s.cfg.Now().UnixNano(), s.lastNanos+1)
	s.lastNanos = nanos
	s.mu.Unlock()
	name, err := segmentName(nanos, s.pid)
	if err != nil {
		return nil, err
	}
	return createSegment(s.cfg.Dir, name, s.pid, nanos)
}

func (s *Spool) addLocked(seg *segment) {
	i, _ := slices.BinarySearchFunc(s.segs, seg.name, func(a *segment, name string) int { return strings.Compare(a.name, name) })
	s.segs = slices.Insert(s.segs, i, seg)
	s.byName[seg.name] = seg
	s.ownBytes += seg.size
}

// Stats returns a snapshot of the counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{Bytes: s.ownBytes, DirBytes: s.ownBytes + s.foreign, MaxBytes: s.cfg.MaxBytes, Segments: len(s.segs)}
	for _, seg := range s.segs {
		st.Pending += seg.pending
	}
	s.mu.Unlock()
	st.Appended = s.stats.appended.Load()
	st.Syncs = s.stats.syncs.Load()
	st.Refused = s.stats.refused.Load()
	st.Damaged = s.stats.damaged.Load()
	st.Claimed = s.stats.claimed.Load()
	return st
}

// Close finishes the commit in progress (and commits the batches already
// queued for one, whose Append calls then return normally), deletes the
// segments whose records were all acknowledged (an empty one included),
// and closes the others, releasing their locks: the next process to open
// the directory claims them, and delivers again the records handed out but
// not acknowledged. Blocked Append and Next calls return ErrClosed, as do
// all calls after Close. Close is idempotent: later calls return nil.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()

	s.leader <- struct{}{} // held for good: no commit after this one
	s.mu.Lock()
	g := s.group
	s.group = nil
	s.mu.Unlock()
	if g != nil {
		s.commit(g)
		close(g.done)
	}

	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	segs := slices.Clone(s.segs)
	for _, seg := range segs {
		seg.sealed = true
	}
	s.mu.Unlock()
	var errs []error
	for _, seg := range segs {
		s.mu.Lock()
		complete := seg.complete()
		s.mu.Unlock()
		if complete {
			errs = append(errs, s.remove(seg))
			continue
		}
		errs = append(errs, seg.f.Close())
	}
	return errors.Join(errs...)
}

// remove deletes a fully acknowledged segment. Called with ackMu held.
func (s *Spool) remove(seg *segment) error {
	s.mu.Lock()
	if _, ok := s.byName[seg.name]; !ok {
		s.mu.Unlock()
		return nil
	}
	s.segs = slices.DeleteFunc(s.segs, func(x *segment) bool { return x == seg })
	delete(s.byName, seg.name)
	s.gone[seg.name] = true
	s.ownBytes -= seg.size
	s.broadcastLocked(&s.freed)
	s.mu.Unlock()
	// Persist the final position first: should the unlink fail, a later
	// owner sees the records as acknowledged.
	err := seg.writeAck(seg.size)
	if rerr := os.Remove(filepath.Join(s.cfg.Dir, seg.name)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if cerr := seg.f.Close(); cerr != nil { // releases the lock after the unlink
		err = errors.Join(err, cerr)
	}
	return err
}

// broadcastLocked wakes every waiter of *ch.
func (s *Spool) broadcastLocked(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}
