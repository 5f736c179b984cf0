package spool

import (
	"context"
	"fmt"
	"time"
)

// group is a set of batches committed together with one fdatasync.
type group struct {
	batches []*batch
	done    chan struct{} // closed when every batch has its result
}

// batch is the framed records of one Append call.
type batch struct {
	buf     []byte
	records int
	err     error // set by the committer before group.done closes
}

// Append frames the records and writes them to this process's segment.
// When it returns nil they are on stable storage (fdatasync) and will be
// delivered by Next, here or in a later process, until acknowledged.
//
// All records of one call are committed together with one fdatasync, and
// concurrent calls from several goroutines share fdatasyncs: the first
// caller to find no commit in progress writes and syncs every batch queued
// so far, while the others wait for it (leader/follower group commit).
// The records of one call are contiguous and in order in the spool.
//
// Append does not retain the record slices. ctx bounds only the wait for
// space under the Block policy: once the records are queued for a commit,
// Append returns its result. If Append returns an error other than
// ErrFull, ErrTooLarge, ErrClosed or a context error, some of the records
// may still be delivered later (the spool truncates a failed write when it
// can). Append after Close returns ErrClosed.
func (s *Spool) Append(ctx context.Context, records ...[]byte) error {
	if len(records) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return ErrClosed
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var size int64
	for i, r := range records {
		if len(r) > maxPayload {
			return fmt.Errorf("append record %d of %d bytes (limit %d): %w", i, len(r), maxPayload, ErrTooLarge)
		}
		size += frameLen(len(r))
	}
	if size > s.cfg.SegmentBytes-headerLen {
		return fmt.Errorf("append batch of %d bytes (segment size %d): split it: %w", size, s.cfg.SegmentBytes, ErrTooLarge)
	}
	b := &batch{buf: make([]byte, 0, size), records: len(records)}
	for _, r := range records {
		b.buf = appendFrame(b.buf, r)
	}
	if err := s.reserve(ctx, size); err != nil {
		return err
	}

	s.mu.Lock()
	if s.closed {
		s.reserved -= size
		s.mu.Unlock()
		return ErrClosed
	}
	g := s.group
	if g == nil {
		g = &group{done: make(chan struct{})}
		s.group = g
	}
	g.batches = append(g.batches, b)
	s.mu.Unlock()

	select {
	case <-g.done: // a leader committed our group
		return b.err
	case s.leader <- struct{}{}:
	}
	select {
	case <-g.done: // committed just before we took the token
	default:
		// Our group is still open (a committed group is always done
		// before the token is released): seal it and commit it.
		s.mu.Lock()
		s.group = nil
		s.mu.Unlock()
		s.commit(g)
		close(g.done)
	}
	<-s.leader
	return b.err
}

// reserve admits size bytes against MaxBytes, waiting under Block.
func (s *Spool) reserve(ctx context.Context, size int64) error {
	refreshed := false
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		used := s.ownBytes + s.reserved + s.foreign
		// Room for a new segment's header too: the batch may start one.
		fits := used+size+headerLen <= s.cfg.MaxBytes
		stale := s.cfg.Now().Sub(s.foreignAt) >= s.cfg.ClaimInterval
		if !refreshed && (stale || !fits) {
			// Other processes' segments may have grown or been drained.
			s.mu.Unlock()
			refreshed = true
			if err := s.refreshForeign(); err != nil {
				return fmt.Errorf("append: measure spool %s: %w", s.cfg.Dir, err)
			}
			continue
		}
		if fits {
			s.reserved += size
			s.mu.Unlock()
			return nil
		}
		freed := s.freed
		s.mu.Unlock()
		full := fmt.Sprintf("append %d bytes to spool %s (%d of %d bytes used)", size, s.cfg.Dir, used, s.cfg.MaxBytes)
		if s.cfg.Full == RefuseNew {
			s.stats.refused.Add(1)
			return fmt.Errorf("%s: %w", full, ErrFull)
		}
		if timer == nil {
			timer = time.NewTimer(s.cfg.ClaimInterval)
		} else {
			timer.Reset(s.cfg.ClaimInterval)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w: %w", full, ErrFull, ctx.Err())
		case <-s.done:
			return ErrClosed
		case <-freed:
		case <-timer.C:
			refreshed = false // other processes may have freed space
		}
	}
}

// commit writes and syncs the batches of g, rotating segments as needed,
// and sets every batch's result. Called with the leader token held.
func (s *Spool) commit(g *group) {
	var run []*batch // batches written to s.active since the last sync
	var wrote int64
	flush := func() {
		if len(run) == 0 {
			return
		}
		err := s.sync(s.active, wrote, run)
		for _, b := range run {
			b.err = err
		}
		run, wrote = run[:0], 0
	}
	for _, b := range g.batches {
		n := int64(len(b.buf))
		s.mu.Lock()
		seg := s.active
		s.mu.Unlock()
		if seg.broken || (seg.size+wrote > headerLen && seg.size+wrote+n > s.cfg.SegmentBytes) {
			flush()
			if err := s.rotate(); err != nil {
				s.release(n)
				b.err = fmt.Errorf("append: new segment in %s: %w", s.cfg.Dir, err)
				continue
			}
			seg = s.active
		}
		if err := s.write(seg, b.buf, seg.size+wrote); err != nil {
			s.release(n)
			b.err = fmt.Errorf("append: %w", err)
			// Cut the partial write off; if that fails the segment is
			// retired (its committed size still hides the bytes from
			// this process's readers).
			if terr := seg.f.Truncate(seg.size + wrote); terr != nil {
				seg.broken = true
			}
			continue
		}
		run = append(run, b)
		wrote += n
	}
	flush()
}

// write writes buf at off (in two halves around testSplit, if set).
func (s *Spool) write(seg *segment, buf []byte, off int64) error {
	if s.testSplit != nil {
		half := len(buf) / 2
		if _, err := seg.f.WriteAt(buf[:half], off); err != nil {
			return err
		}
		s.testSplit()
		buf, off = buf[half:], off+int64(half)
	}
	_, err := seg.f.WriteAt(buf, off)
	return err
}

// sync makes the bytes written since the last commit durable and
// publishes them to readers and to the size accounting.
func (s *Spool) sync(seg *segment, wrote int64, run []*batch) error {
	s.stats.syncs.Add(1)
	if err := syncData(seg.f); err != nil {
		// After a failed fdatasync the page cache can no longer be
		// trusted (fsyncgate): retire the segment and hide the bytes.
		seg.broken = true
		_ = seg.f.Truncate(seg.size)
		s.release(wrote)
		return fmt.Errorf("append: %w", err)
	}
	records := 0
	for _, b := range run {
		records += b.records
	}
	s.mu.Lock()
	seg.size += wrote
	seg.pending += records
	s.ownBytes += wrote
	s.reserved -= wrote
	s.broadcastLocked(&s.appended)
	s.mu.Unlock()
	s.stats.appended.Add(uint64(records))
	return nil
}

// release returns reserved bytes that were not committed.
func (s *Spool) release(n int64) {
	s.mu.Lock()
	s.reserved -= n
	s.broadcastLocked(&s.freed)
	s.mu.Unlock()
}

// rotate seals the active segment and starts a new one. Called with the
// leader token held.
func (s *Spool) rotate() error {
	seg, err := s.newSegment()
	if err != nil {
		return err
	}
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	old := s.active
	old.sealed = true
	s.addLocked(seg)
	s.active = seg
	complete := old.complete()
	s.mu.Unlock()
	if complete {
		s.removeLogged(old)
	}
	return nil
}

// removeLogged removes a segment whose deletion is a side effect of
// another operation. The error is logged, not returned: that operation
// succeeded, and the segment's records are acknowledged, so a leftover
// file costs only disk space until a later claim deletes it.
func (s *Spool) removeLogged(seg *segment) {
	if err := s.remove(seg); err != nil {
		s.log.Error().Err(err).Str("segment", seg.name).Msg("spool: remove acknowledged segment")
	}
}
