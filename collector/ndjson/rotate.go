package ndjson

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const (
	ext     = ".ndjson"
	gzExt   = ".ndjson.gz"
	tmpExt  = ".gz.tmp"
	stamp   = "20060102T150405.000000000Z" // fixed width: names sort by time
	maxName = 1000                         // attempts at a free name
)

// rotateIfDue closes the current file when it is older than MaxAge.
func (s *Sink) rotateIfDue() error {
	if s.f != nil && s.size > 0 && s.cfg.Now().Sub(s.opened) >= s.cfg.MaxAge {
		return s.rotate()
	}
	return nil
}

// rotate closes the current file (it was fsynced by its last commit) and
// hands it to the compressor; the next commit opens a new one.
func (s *Sink) rotate() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.handOver(s.path)
	s.f, s.size = nil, 0
	if err != nil {
		return fmt.Errorf("ndjson: close %s: %w", s.path, err)
	}
	s.log.Debug().Str("file", s.path).Msg("rotated")
	return nil
}

// handOver queues a closed file for compression.
func (s *Sink) handOver(path string) {
	if s.gz != nil {
		s.gz.add(path)
	}
}

// open creates the next file, mode 0600, and makes its name durable. Its
// name carries the time in nanoseconds, later than every earlier file's,
// so that names sort in the order of the events.
func (s *Sink) open() error {
	t := s.cfg.Now().UTC()
	for i := 0; i < maxName; i++ {
		if !t.After(s.lastName) {
			t = s.lastName.Add(time.Nanosecond)
		}
		s.lastName = t
		path := filepath.Join(s.cfg.Dir, s.cfg.Prefix+"-"+t.Format(stamp)+ext)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ndjson: create %w", err)
		}
		if err := syncDir(s.cfg.Dir); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return err
		}
		s.f, s.path, s.size, s.opened = f, path, 0, s.cfg.Now()
		return nil
	}
	return fmt.Errorf("ndjson: no free file name in %s", s.cfg.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ndjson: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ndjson: fsync %s: %w", dir, err)
	}
	return nil
}

// listFiles returns the sink's files in dir, oldest first.
func listFiles(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ndjson: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, prefix+"-") && (strings.HasSuffix(n, ext) || strings.HasSuffix(n, gzExt)) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(trimExt(a), trimExt(b)) })
	return out, nil
}

func trimExt(p string) string {
	return strings.TrimSuffix(strings.TrimSuffix(p, gzExt), ext)
}

// compressor gzips closed files, one at a time, in its own goroutine.
type compressor struct {
	log   zerolog.Logger
	mu    sync.Mutex
	queue []string
	wake  chan struct{} // 1: a pending wake-up is enough
	quit  chan struct{}
	done  chan struct{}
	ctx   context.Context // cancelled when stop's deadline passes
	abort context.CancelFunc
	once  sync.Once
}

// startCompressor starts the compressor with the files an earlier process
// left uncompressed, and removes the temporary files of an interrupted
// compression.
func startCompressor(cfg Config, log zerolog.Logger) *compressor {
	ctx, cancel := context.WithCancel(context.Background())
	c := &compressor{log: log, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), ctx: ctx, abort: cancel}
	if tmps, err := filepath.Glob(filepath.Join(cfg.Dir, cfg.Prefix+"-*"+tmpExt)); err == nil {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	if files, err := listFiles(cfg.Dir, cfg.Prefix); err == nil {
		for _, f := range files {
			if strings.HasSuffix(f, ext) {
				c.add(f)
			}
		}
	}
	go c.loop()
	return c
}

func (c *compressor) add(path string) {
	c.mu.Lock()
	c.queue = append(c.queue, path)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *compressor) next() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return "", false
	}
	p := c.queue[0]
	c.queue = c.queue[1:]
	return p, true
}

func (c *compressor) loop() {
	defer close(c.done)
	for {
		for {
			p, ok := c.next()
			if !ok {
				break
			}
			if err := compress(c.ctx, p); err != nil {
				c.log.Error().Err(err).Str("file", p).Msg("compress; the file stays as it is and is retried at the next start")
			}
			if c.ctx.Err() != nil {
				return
			}
		}
		select {
		case <-c.wake:
		case <-c.quit:
			// Drain what was queued before stop, then return.
			if _, ok := c.peek(); !ok {
				return
			}
		}
	}
}

func (c *compressor) peek() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return "", false
	}
	return c.queue[0], true
}

// stop compresses what is queued until ctx ends, then abandons the rest.
func (c *compressor) stop(ctx context.Context) error {
	c.once.Do(func() { close(c.quit) })
	select {
	case <-c.done:
		c.abort()
		return nil
	case <-ctx.Done():
		c.abort()
		<-c.done
		return fmt.Errorf("ndjson: compression left unfinished (done at the next start): %w", ctx.Err())
	}
}

// compress writes path.gz through a temporary file and removes path.
func compress(ctx context.Context, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst := strings.TrimSuffix(path, ext) + gzExt
	tmp := strings.TrimSuffix(path, ext) + tmpExt
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = out.Close()
		_ = os.Remove(tmp)
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Name = filepath.Base(path)
	zw.ModTime = time.Now()
	if _, err := io.Copy(zw, ctxReader{ctx, src}); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return os.Remove(path)
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
