// Package ndjson is the collector's file sink: events as newline-delimited
// JSON, one event per line, the bytes exactly as the stream holds them
// (JSON with line breaks between tokens is compacted onto one line, which
// changes no value).
//
// Guarantees: an event is reported Delivered only after its line was
// written and the file fsynced. Files are created with mode 0600 in a
// directory of mode 0700 (created if missing), never appended to by two
// sinks (an exclusive lock on DIR/.lock), and named
// PREFIX-<UTC time in nanoseconds>.ndjson, each later than the last, so
// that their names sort in the order of the events. A file is closed and a
// new one begun when the next batch would take it past MaxBytes (a single
// event larger than that gets a file of its own) or when it is older than
// MaxAge at the next write. With Gzip, closed files are compressed to
// .ndjson.gz in the background (a temporary file, fsync, rename; the
// original is removed last), and files left uncompressed by an earlier
// process are compressed when the sink starts.
//
// A write or fsync that fails is undone (the file is truncated back to
// its last confirmed size) and reported Retry: the file never holds half a
// batch that was reported failed. If even the truncation fails, the file
// is abandoned and the next write starts a new one; readers should skip a
// torn last line.
//
// The sink does not remove duplicates: an event the collector delivers
// again (after a crash, before its acknowledgement) is written again, with
// the same metadata.uid.
package ndjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
)

// Defaults of [Config].
const (
	DefaultPrefix   = "sandtrail-events"
	DefaultMaxBytes = 100 << 20
	DefaultMaxAge   = 24 * time.Hour
)

// Config configures a [Sink]. The zero value of each field means the
// default in its comment; Dir is required.
type Config struct {
	// Dir holds the files. Required; created (0700) if missing.
	Dir string `yaml:"dir"`
	// Prefix starts every file name. Default "sandtrail-events".
	Prefix string `yaml:"prefix"`
	// MaxBytes is the size a file is rotated at. Default 100MiB.
	MaxBytes collector.ByteSize `yaml:"max_bytes"`
	// MaxAge is the age a file is rotated at (checked at each write).
	// Default 24h.
	MaxAge time.Duration `yaml:"max_age"`
	// Gzip compresses closed files. Default false.
	Gzip bool `yaml:"gzip"`
	// Now is the clock for file names and ages. Default time.Now.
	Now func() time.Time `yaml:"-"`
	// Logger receives rotation and compression reports.
	Logger zerolog.Logger `yaml:"-"`
}

// Decode reads the sink's section of a collector configuration file
// strictly (see collector.DecodeStrict).
func Decode(node *yaml.Node, file string) (Config, error) {
	var c Config
	err := collector.DecodeStrict(node, file, &c)
	return c, err
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("ndjson: Dir is required")
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxBytes < 0 || c.MaxAge < 0 {
		return c, errors.New("ndjson: MaxBytes and MaxAge must not be negative")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Sink writes events to rotated NDJSON files.
type Sink struct {
	cfg  Config
	log  zerolog.Logger
	lock *os.File

	mu     sync.Mutex // Write and Close
	f      *os.File   // the current file; nil before the first write and after a failure
	path   string
	size   int64 // bytes confirmed (written and fsynced) in f
	opened time.Time
	// lastName is the time in the newest file name.
	lastName time.Time
	closed   bool
	buf      []byte

	gz *compressor // nil without Gzip
}

var _ collector.Sink = (*Sink)(nil)

// New checks cfg, creates the directory and locks it. With Gzip it starts
// the compressor, which Close stops.
func New(cfg Config) (*Sink, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ndjson: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, log: cfg.Logger.With().Str("component", "ndjson").Str("dir", cfg.Dir).Logger(), lock: lock}
	if cfg.Gzip {
		s.gz = startCompressor(cfg, s.log)
	}
	return s, nil
}

// Write appends the batch, one line per event, and fsyncs before it
// reports anything Delivered. A batch that would take the file past
// MaxBytes is split across files at event boundaries.
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	outs := make([]collector.Outcome, len(batch))
	if s.closed {
		return collector.RetryAll(len(batch), "ndjson: sink closed", 0)
	}
	done := 0
	for done < len(batch) {
		if err := ctx.Err(); err != nil {
			return retryFrom(outs, done, "ndjson: "+err.Error())
		}
		if err := s.rotateIfDue(); err != nil {
			return retryFrom(outs, done, err.Error())
		}
		// Fill the current file up to MaxBytes (at least one event).
		s.buf = s.buf[:0]
		n := done
		for n < len(batch) {
			before := len(s.buf)
			s.buf = appendLine(s.buf, batch[n].Data)
			if n > done && s.size+int64(len(s.buf)) > int64(s.cfg.MaxBytes) {
				s.buf = s.buf[:before]
				break
			}
			n++
		}
		if s.size > 0 && s.size+int64(len(s.buf)) > int64(s.cfg.MaxBytes) {
			// Even one event does not fit: it goes to a new file.
			if err := s.rotate(); err != nil {
				return retryFrom(outs, done, err.Error())
			}
			continue
		}
		if err := s.commit(s.buf); err != nil {
			return retryFrom(outs, done, err.Error())
		}
		done = n
	}
	if cap(s.buf) > 4<<20 {
		s.buf = nil // do not keep a huge buffer after a large event
	}
	return outs
}

// retryFrom marks outs[from:] Retry (what came before was confirmed).
func retryFrom(outs []collector.Outcome, from int, reason string) []collector.Outcome {
	for i := from; i < len(outs); i++ {
		outs[i] = collector.Outcome{Status: collector.Retry, Reason: reason}
	}
	return outs
}

// appendLine appends one event and a newline, compacting JSON that spans
// several lines.
func appendLine(buf, data []byte) []byte {
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err == nil {
			data = b.Bytes()
		}
	}
	buf = append(buf, data...)
	return append(buf, '\n')
}

// commit writes b to the current file and fsyncs it; on failure it undoes
// the write.
func (s *Sink) commit(b []byte) error {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	_, err := s.f.Write(b)
	if err == nil {
		err = s.f.Sync()
	}
	if err == nil {
		s.size += int64(len(b))
		return nil
	}
	err = fmt.Errorf("ndjson: write %s: %w", s.path, err)
	if terr := s.f.Truncate(s.size); terr != nil {
		// The file may end with part of this batch: leave it.
		s.log.Error().Err(terr).Str("file", s.path).Msg("cannot undo a failed write; starting a new file")
		_ = s.f.Close()
		s.f = nil
		s.handOver(s.path)
	}
	return err
}

// Close fsyncs and closes the current file, compresses what is due until
// ctx ends (the rest is compressed by the next sink on the directory) and
// releases the lock. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("ndjson: fsync %s: %w", s.path, err))
		}
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("ndjson: close %s: %w", s.path, err))
		}
		s.handOver(s.path)
		s.f = nil
	}
	s.mu.Unlock()
	if s.gz != nil {
		if err := s.gz.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("ndjson: unlock %s: %w", s.cfg.Dir, err))
	}
	return errors.Join(errs...)
}

// Files returns the paths of the sink's files in the directory, oldest
// first, compressed or not (the current file last).
func (s *Sink) Files() ([]string, error) { return listFiles(s.cfg.Dir, s.cfg.Prefix) }
