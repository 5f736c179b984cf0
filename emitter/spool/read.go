package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Record is a spooled record handed out by Next.
type Record struct {
	Data []byte   // the appended bytes; owned by the caller
	Pos  Position // where the record lives, for Ack
}

// Position identifies a spooled record: its segment file and offset. It
// is stable across processes and restarts, and unique (segment names
// carry a timestamp, a pid and random bytes), so String is usable as a
// JetStream message ID (jetstream.WithMsgID) that lets the server drop a
// record delivered again after a crash. The zero Position is invalid.
type Position struct {
	seg      string
	off, end int64
}

// Segment returns the base name of the record's segment file.
func (p Position) Segment() string { return p.seg }

// Offset returns the byte offset of the record's frame in its segment.
func (p Position) Offset() int64 { return p.off }

// String returns "segment:offset".
func (p Position) String() string { return p.seg + ":" + strconv.FormatInt(p.off, 10) }

// nextBytes bounds the payload bytes one Next call returns (beyond the
// first record).
const nextBytes = 4 << 20

// Next returns up to max records (and about 4 MiB) that this Spool has
// not handed out yet, in append order within a segment and segments in
// creation order. It blocks until at least one record is available, ctx
// ends, or the Spool is closed (ErrClosed). While idle it claims, every
// ClaimInterval, the segments of processes that have gone away.
//
// Each record is handed out once per Spool: a record that is never
// acknowledged is delivered again only by a later Spool (after Close, or
// after this process dies). Calls to Next are serialised.
func (s *Spool) Next(ctx context.Context, max int) ([]Record, error) {
	if max <= 0 {
		return nil, fmt.Errorf("spool: Next: max %d is not positive", max)
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		var seg *segment
		var from, to int64
		for _, x := range s.segs {
			if x.read < x.size {
				seg, from, to = x, x.read, x.size
				break
			}
		}
		appended := s.appended
		claimDue := s.cfg.Now().Sub(s.claimAt) >= s.cfg.ClaimInterval
		s.mu.Unlock()

		if seg != nil {
			recs, err := s.readSegment(seg, from, to, max)
			if err != nil || len(recs) > 0 {
				return recs, err
			}
			continue // only damage was skipped
		}
		if claimDue {
			s.claimLogged()
			continue
		}
		if timer == nil {
			timer = time.NewTimer(s.cfg.ClaimInterval)
		} else {
			timer.Reset(s.cfg.ClaimInterval)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, ErrClosed
		case <-appended:
		case <-timer.C:
		}
	}
}

// claimLogged claims segments of processes that are gone, logging what
// it found: Next has no recovery report to return. Called with readMu.
func (s *Spool) claimLogged() {
	rec, err := s.claim()
	if err != nil {
		s.log.Error().Err(err).Msg("spool: claim segments")
	}
	for _, err := range rec.Errors {
		s.log.Warn().Err(err).Msg("spool: segment left in place")
	}
	if len(rec.Claimed) > 0 {
		s.log.Info().Int("segments", len(rec.Claimed)).Int("records", rec.Records).Int("damaged", len(rec.Damage)).Msg("spool: claimed segments of processes that are gone")
	}
}

// readSegment reads records of seg in [from, to) and advances its read
// cursor. Called with readMu held.
func (s *Spool) readSegment(seg *segment, from, to int64, max int) ([]Record, error) {
	fr := newFrameReader(seg.f, from, to)
	fr.buf, s.readBuf = s.readBuf[:0], nil // reuse the window between calls
	defer func() { s.readBuf = fr.buf }()
	var recs []Record
	var damaged []damage
	size := 0
	for len(recs) < max && size < nextBytes {
		off, p, d, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(recs) > 0 || len(damaged) > 0 {
				break // hand out what was read; the error comes back next time
			}
			return nil, fmt.Errorf("read %s: %w", filepath.Join(s.cfg.Dir, seg.name), err)
		}
		if d != nil {
			damaged = append(damaged, *d)
			continue
		}
		recs = append(recs, Record{Data: bytes.Clone(p), Pos: Position{seg: seg.name, off: off, end: fr.off}})
		size += len(p)
	}
	s.mu.Lock()
	seg.read = fr.off
	s.mu.Unlock()
	if len(damaged) > 0 {
		s.skip(seg, damaged)
	}
	return recs, nil
}

// skip reports damage not reported yet and counts the ranges as
// acknowledged, so that the segment can still be completed and deleted.
func (s *Spool) skip(seg *segment, damaged []damage) {
	for _, d := range damaged {
		if !slices.Contains(seg.known, d) {
			s.report(seg, d)
			seg.known = append(seg.known, d)
		}
	}
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	for _, d := range damaged {
		if d.off >= seg.ack {
			seg.acked[d.off] = d.end
		}
	}
	s.mu.Unlock()
	if err := s.advance(seg); err != nil {
		s.log.Error().Err(err).Str("segment", seg.name).Msg("spool: persist position after damaged bytes")
	}
}

// Ack acknowledges records handed out by Next, typically after the
// server's PubAck. Positions may be acknowledged in any order and more
// than once; a segment's acknowledged position advances over the longest
// acknowledged prefix and is persisted (fdatasync) before Ack returns, so
// after a crash only records acknowledged out of order, or in an Ack that
// did not return, are delivered again. Acknowledge in batches: each call
// costs up to one fdatasync per segment touched. A sealed segment whose
// records are all acknowledged is deleted.
//
// Positions that this Spool did not hand out return an error wrapping
// ErrUnknownPosition; the other positions are still acknowledged. If
// persisting fails, the records count as acknowledged in this Spool but
// may be delivered again by a later one. Ack after Close returns
// ErrClosed.
func (s *Spool) Ack(pos ...Position) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var errs []error
	var touched []*segment
	for _, p := range pos {
		seg := s.byName[p.seg]
		switch {
		case seg == nil && s.gone[p.seg]:
			continue // segment fully acknowledged and deleted
		case seg == nil:
			errs = append(errs, fmt.Errorf("ack %v: %w", p, ErrUnknownPosition))
			continue
		case p.end <= seg.ack:
			continue // already acknowledged
		case p.off < headerLen || p.end <= p.off || p.end > seg.read:
			errs = append(errs, fmt.Errorf("ack %v: not handed out: %w", p, ErrUnknownPosition))
			continue
		}
		if _, dup := seg.acked[p.off]; dup {
			continue
		}
		seg.acked[p.off] = p.end
		seg.pending--
		if !slices.Contains(touched, seg) {
			touched = append(touched, seg)
		}
	}
	s.mu.Unlock()
	for _, seg := range touched {
		if err := s.advance(seg); err != nil {
			errs = append(errs, fmt.Errorf("ack: %w", err))
		}
	}
	return errors.Join(errs...)
}

// advance moves seg's acknowledged position over acknowledged ranges,
// persists it, and deletes the segment once it is sealed and complete.
// Called with ackMu held.
func (s *Spool) advance(seg *segment) error {
	s.mu.Lock()
	if s.byName[seg.name] != seg {
		s.mu.Unlock()
		return nil // already removed
	}
	w := seg.ack
	for {
		end, ok := seg.acked[w]
		delete(seg.acked, w)
		if !ok || end <= w {
			break
		}
		w = end
	}
	moved := w != seg.ack
	seg.ack = w
	complete := seg.complete()
	s.mu.Unlock()
	switch {
	case complete:
		return s.remove(seg)
	case moved:
		return seg.writeAck(w)
	}
	return nil
}
