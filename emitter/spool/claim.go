package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tmpMaxAge is how old an unlocked temporary segment must be before a
// claim deletes it: younger ones may belong to a writer that has created
// the file but not yet locked it.
const tmpMaxAge = time.Minute

// claim takes over every segment in the directory that no live process
// holds and measures the ones that live processes hold. Called with
// readMu held, so that Next never reads a half-claimed segment.
func (s *Spool) claim() (Recovery, error) {
	var rec Recovery
	now := s.cfg.Now()
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return rec, err
	}
	var foreign int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			s.cleanTmp(name, now)
			continue
		}
		if !isSegmentName(name) {
			continue
		}
		s.mu.Lock()
		skip := s.byName[name] != nil || s.gone[name]
		s.mu.Unlock()
		if skip {
			continue
		}
		seg, err := claimSegment(s.cfg.Dir, name)
		if err != nil {
			rec.Errors = append(rec.Errors, fmt.Errorf("claim %s: %w", filepath.Join(s.cfg.Dir, name), err))
			continue
		}
		if seg == nil { // held by a live process, or just deleted
			if fi, err := e.Info(); err == nil {
				foreign += fi.Size()
			}
			continue
		}
		damage, err := s.adopt(seg)
		rec.Damage = append(rec.Damage, damage...)
		if err != nil {
			rec.Errors = append(rec.Errors, fmt.Errorf("claim %s: %w", filepath.Join(s.cfg.Dir, name), err))
			continue
		}
		rec.Claimed = append(rec.Claimed, name)
		s.mu.Lock()
		rec.Records += seg.pending
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.foreign, s.foreignAt, s.claimAt = foreign, now, now
	s.mu.Unlock()
	return rec, nil
}

// adopt scans a claimed segment from its acknowledged position, reports
// and logs its damage, and either adds it to the owned segments or, if no
// record is left to deliver, deletes it.
func (s *Spool) adopt(seg *segment) ([]Damage, error) {
	s.stats.claimed.Add(1)
	var found []Damage
	report := func(d damage) {
		found = append(found, s.report(seg, d))
	}
	reason, err := seg.readHeader()
	if err != nil {
		seg.f.Close()
		return nil, err
	}
	switch {
	case seg.size < headerLen:
		report(damage{off: 0, end: seg.size, reason: "truncated segment header", tail: true})
		seg.ack = seg.size
	case reason != "":
		report(damage{off: 0, end: headerLen, reason: reason})
	}
	fr := newFrameReader(seg.f, seg.ack, seg.size)
	for {
		_, _, d, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			seg.f.Close()
			return found, err
		}
		if d != nil {
			report(*d)
			seg.known = append(seg.known, *d)
			seg.acked[d.off] = d.end
			continue
		}
		seg.pending++
	}
	seg.read = seg.ack
	if seg.pending == 0 {
		seg.ack = seg.size
		s.ackMu.Lock()
		defer s.ackMu.Unlock()
		s.mu.Lock()
		s.addLocked(seg)
		s.mu.Unlock()
		return found, s.remove(seg)
	}
	s.mu.Lock()
	s.addLocked(seg)
	s.broadcastLocked(&s.appended)
	s.mu.Unlock()
	return found, nil
}

// report counts and logs a damaged range and returns its public form.
func (s *Spool) report(seg *segment, d damage) Damage {
	s.stats.damaged.Add(1)
	pd := Damage{
		File:     filepath.Join(s.cfg.Dir, seg.name),
		Offset:   d.off,
		Length:   d.end - d.off,
		Reason:   d.reason,
		TornTail: d.tail,
	}
	s.log.Warn().Str("file", pd.File).Int64("offset", pd.Offset).Int64("length", pd.Length).
		Str("reason", pd.Reason).Bool("torn_tail", pd.TornTail).Msg("spool: skipped damaged bytes")
	return pd
}

// cleanTmp deletes a temporary segment left by a writer that died while
// creating it. Such a file never holds records.
func (s *Spool) cleanTmp(name string, now time.Time) {
	path := filepath.Join(s.cfg.Dir, name)
	fi, err := os.Stat(path)
	if err != nil || now.Sub(fi.ModTime()) < tmpMaxAge {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if ok, err := tryLock(f); err == nil && ok {
		if err := os.Remove(path); err == nil {
			s.log.Info().Str("file", path).Msg("spool: removed abandoned temporary segment")
		}
	}
}

// refreshForeign measures the segments of other live processes, for the
// MaxBytes check.
func (s *Spool) refreshForeign() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	sizes := map[string]int64{}
	for _, e := range entries {
		if !isSegmentName(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			sizes[e.Name()] = fi.Size()
		}
	}
	var foreign int64
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, size := range sizes {
		if s.byName[name] == nil {
			foreign += size
		}
	}
	s.foreign, s.foreignAt = foreign, s.cfg.Now()
	return nil
}
