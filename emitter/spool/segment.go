package spool

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// Segment header (little endian), headerLen bytes; records start after it:
//
//	offset  size  field
//	0       8     magic "STSPOOL1"
//	8       4     format version (1)
//	12      4     pid of the writer
//	16      8     creation time, Unix nanoseconds
//	24      4     CRC-32C of bytes 0..23
//	28      36    zero
//	64      32    ack slot 0
//	96      32    ack slot 1
//
// An ack slot is: sequence (8) | acknowledged offset (8) | CRC-32C of the
// previous 16 bytes (4) | zero (12). Acks alternate between the slots by
// sequence parity, so a torn slot write leaves the other slot intact; the
// valid slot with the highest sequence wins.
const (
	headerLen     = 128
	segMagic      = "STSPOOL1"
	segVersion    = 1
	ackSlotOff    = 64
	ackSlotLen    = 32
	segPrefix     = "seg-"
	segSuffix     = ".log"
	tmpPrefix     = ".tmp-"
	reasonBadHead = "bad segment header"
)

// segment is one segment file owned by a Spool: created by it (own) or
// claimed from a writer that is gone. Fields are guarded by Spool.mu
// except f, name and own, which never change, and known, which only the
// claiming code and Next (under Spool.readMu) touch.
type segment struct {
	name string
	f    *os.File // open read-write, flock held while the Spool owns it
	own  bool

	sealed  bool            // no more appends: rotated, claimed, or closed
	size    int64           // committed bytes (readers never look past it)
	read    int64           // next offset Next hands out
	ack     int64           // contiguous acknowledged offset, persisted
	ackSeq  uint64          // sequence of the last persisted ack slot
	acked   map[int64]int64 // acknowledged ranges beyond ack: start -> end
	pending int             // records not yet acknowledged
	broken  bool            // a write or sync failed: never append again
	known   []damage        // damaged ranges already reported
}

func isSegmentName(name string) bool {
	return strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, segSuffix)
}

// segmentName builds a unique name that sorts by creation time: the
// timestamp is zero-padded, then the pid and random bytes make names from
// different processes (and pid reuse) distinct.
func segmentName(nanos int64, pid int) (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%020d-%d-%s%s", segPrefix, nanos, pid, hex.EncodeToString(r[:]), segSuffix), nil
}

func encodeHeader(pid int, nanos int64) []byte {
	h := make([]byte, headerLen)
	copy(h, segMagic)
	binary.LittleEndian.PutUint32(h[8:], segVersion)
	binary.LittleEndian.PutUint32(h[12:], uint32(pid))
	binary.LittleEndian.PutUint64(h[16:], uint64(nanos))
	binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
	return h
}

// createSegment creates, locks and durably names a new segment. The file
// is built under a temporary name and renamed once locked, so no other
// process ever sees an unlocked segment of a live writer.
func createSegment(dir, name string, pid int, nanos int64) (*segment, error) {
	tmp := filepath.Join(dir, tmpPrefix+name)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if ok, err := tryLock(f); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("lock %s: held by another process", tmp)
		}
		return fail(err)
	}
	if _, err := f.WriteAt(encodeHeader(pid, nanos), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return &segment{name: name, f: f, own: true, size: headerLen, read: headerLen, ack: headerLen, acked: map[int64]int64{}}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// claimSegment opens and locks the segment called name if no live
// process holds it. It returns nil, nil if the segment is owned by a live
// process or is gone.
func claimSegment(dir, name string) (*segment, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ok, err := tryLock(f)
	if err == nil && ok {
		// The previous owner may have deleted the file after we opened it.
		ok, err = linked(f, path)
	}
	if err != nil || !ok {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	seg := &segment{name: name, f: f, sealed: true, size: fi.Size(), acked: map[int64]int64{}}
	return seg, nil
}

// readHeader validates the segment header and loads the ack position. A
// damaged fixed header is reported by the returned reason; the records
// after it are still read (their frames carry their own checksums).
func (seg *segment) readHeader() (reason string, err error) {
	seg.ack = headerLen
	if seg.size < headerLen {
		return "", nil // caller reports the short file as a torn tail
	}
	h := make([]byte, headerLen)
	if _, err := seg.f.ReadAt(h, 0); err != nil {
		return "", err
	}
	if string(h[:8]) != segMagic || crc32.Checksum(h[:24], castagnoli) != binary.LittleEndian.Uint32(h[24:28]) {
		reason = reasonBadHead
	} else if v := binary.LittleEndian.Uint32(h[8:]); v != segVersion {
		return "", fmt.Errorf("segment %s: format version %d, want %d", seg.name, v, segVersion)
	}
	for i := range 2 {
		slot := h[ackSlotOff+i*ackSlotLen:][:ackSlotLen]
		if crc32.Checksum(slot[:16], castagnoli) != binary.LittleEndian.Uint32(slot[16:20]) {
			continue
		}
		seq := binary.LittleEndian.Uint64(slot[0:8])
		off := int64(binary.LittleEndian.Uint64(slot[8:16]))
		if seq == 0 || seq < seg.ackSeq || off < headerLen || off > seg.size {
			continue
		}
		seg.ackSeq, seg.ack = seq, off
	}
	return reason, nil
}

// writeAck durably records off as the acknowledged position.
func (seg *segment) writeAck(off int64) error {
	seq := seg.ackSeq + 1
	var slot [ackSlotLen]byte
	binary.LittleEndian.PutUint64(slot[0:8], seq)
	binary.LittleEndian.PutUint64(slot[8:16], uint64(off))
	binary.LittleEndian.PutUint32(slot[16:20], crc32.Checksum(slot[:16], castagnoli))
	if _, err := seg.f.WriteAt(slot[:], ackSlotOff+int64(seq%2)*ackSlotLen); err != nil {
		return err
	}
	if err := syncData(seg.f); err != nil {
		return err
	}
	seg.ackSeq = seq
	return nil
}

// complete reports whether every record of a sealed segment is
// acknowledged, so that the file can be deleted.
func (seg *segment) complete() bool { return seg.sealed && seg.ack >= seg.size }
