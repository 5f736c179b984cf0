package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// Record framing (all integers little endian):
//
//	offset  size  field
//	0       4     magic 0xFE 'S' 'R' 'C'
//	4       4     payload length
//	8       4     CRC-32C (Castagnoli) of the payload
//	12      4     CRC-32C of bytes 0..11 (the header checksum)
//	16      n     payload
//
// The header has its own checksum so that resynchronisation after a
// damaged record can reject candidate headers without reading payloads.
// The first magic byte, 0xFE, never occurs in UTF-8 text, so JSON payloads
// cannot contain a false frame start.
const (
	frameHeaderLen = 16
	// maxPayload is the largest record the framing accepts (the length
	// field could hold more; this bound stops a damaged length from
	// making a reader allocate gigabytes).
	maxPayload = 16 << 20
)

var frameMagic = [4]byte{0xFE, 'S', 'R', 'C'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameLen is the on-disk size of a record with an n-byte payload.
func frameLen(n int) int64 { return frameHeaderLen + int64(n) }

// appendFrame appends the framed payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [frameHeaderLen]byte
	copy(h[:4], frameMagic[:])
	binary.LittleEndian.PutUint32(h[4:8], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(h[12:16], crc32.Checksum(h[:12], castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// parseHeader validates a frame header and returns its payload length and
// payload checksum.
func parseHeader(h []byte) (n int, sum uint32, ok bool) {
	if len(h) < frameHeaderLen || !bytes.Equal(h[:4], frameMagic[:]) {
		return 0, 0, false
	}
	if crc32.Checksum(h[:12], castagnoli) != binary.LittleEndian.Uint32(h[12:16]) {
		return 0, 0, false
	}
	n = int(binary.LittleEndian.Uint32(h[4:8]))
	if n > maxPayload {
		return 0, 0, false
	}
	return n, binary.LittleEndian.Uint32(h[8:12]), true
}

// damage describes a byte range of a segment that holds no valid record.
type damage struct {
	off, end int64
	reason   string // "truncated record", "bad header", "checksum mismatch", errShort
	tail     bool   // the range runs to the end of the data: a torn tail
}

// frameReader reads frames from r between a start offset and a fixed end
// (the committed size of the segment). It is not safe for concurrent use.
type frameReader struct {
	r   io.ReaderAt
	off int64 // next frame to read
	end int64

	buf    []byte // window of the file starting at bufOff
	bufOff int64
}

// window is the read-ahead size; records larger than it are read whole.
const window = 256 << 10

// errShort: the file ends before the committed size (it was truncated
// behind the spool's back). The missing bytes are reported as damage.
var errShort = errors.New("file shorter than its committed size")

func newFrameReader(r io.ReaderAt, off, end int64) *frameReader {
	return &frameReader{r: r, off: off, end: end}
}

// peek returns n bytes at off (off+n <= fr.end). The slice is valid until
// the next call.
func (fr *frameReader) peek(off int64, n int) ([]byte, error) {
	if off >= fr.bufOff && off+int64(n) <= fr.bufOff+int64(len(fr.buf)) {
		i := off - fr.bufOff
		return fr.buf[i : i+int64(n)], nil
	}
	size := max(n, window)
	if rest := fr.end - off; int64(size) > rest {
		size = int(rest)
	}
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	fr.buf = fr.buf[:size]
	if _, err := fr.r.ReadAt(fr.buf, off); err != nil {
		fr.buf = fr.buf[:0]
		if errors.Is(err, io.EOF) {
			err = errShort
		}
		return nil, err
	}
	fr.bufOff = off
	return fr.buf[:n], nil
}

// check reports whether a valid frame starts at off and, if not, why.
// On success it returns the payload (valid until the next peek).
func (fr *frameReader) check(off int64) (payload []byte, reason string, err error) {
	if fr.end-off < frameHeaderLen {
		return nil, "truncated record", nil
	}
	h, err := fr.peek(off, frameHeaderLen)
	if errors.Is(err, errShort) {
		return nil, errShort.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	n, sum, ok := parseHeader(h)
	if !ok {
		return nil, "bad header", nil
	}
	if off+frameLen(n) > fr.end {
		return nil, "truncated record", nil
	}
	p, err := fr.peek(off+frameHeaderLen, n)
	if errors.Is(err, errShort) {
		return nil, errShort.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	if crc32.Checksum(p, castagnoli) != sum {
		return nil, "checksum mismatch", nil
	}
	return p, "", nil
}

// next returns the next record (its offset and payload, valid until the
// next call) or the next damaged range, or io.EOF at the end. After a
// damaged range the reader resumes at the next valid frame.
func (fr *frameReader) next() (off int64, payload []byte, bad *damage, err error) {
	if fr.off >= fr.end {
		return fr.off, nil, nil, io.EOF
	}
	off = fr.off
	p, reason, err := fr.check(off)
	if err != nil {
		return off, nil, nil, err
	}
	if reason == "" {
		fr.off = off + frameLen(len(p))
		return off, p, nil, nil
	}
	resume, err := fr.resync(off + 1)
	if err != nil {
		return off, nil, nil, err
	}
	fr.off = resume
	return off, nil, &damage{off: off, end: resume, reason: reason, tail: resume == fr.end}, nil
}

// resync returns the offset of the first valid frame at or after from, or
// fr.end if there is none.
func (fr *frameReader) resync(from int64) (int64, error) {
	for pos := from; fr.end-pos >= frameHeaderLen; {
		n := int(min(fr.end-pos, window))
		b, err := fr.peek(pos, n)
		if errors.Is(err, errShort) {
			return fr.end, nil // nothing valid in the missing bytes
		}
		if err != nil {
			return 0, err
		}
		i := bytes.IndexByte(b, frameMagic[0])
		if i < 0 {
			pos += int64(n)
			continue
		}
		cand := pos + int64(i)
		_, reason, err := fr.check(cand)
		if err != nil {
			return 0, err
		}
		if reason == "" {
			return cand, nil
		}
		pos = cand + 1
	}
	return fr.end, nil
}
