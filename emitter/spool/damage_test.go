package spool

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// spoolFile appends records in a Spool that is then closed without
// acknowledging, and returns its segment path and the record offsets.
func spoolFile(t *testing.T, dir string, recs [][]byte) (string, []int64) {
	t.Helper()
	s, _, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, s.active.name)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	off := int64(headerLen)
	var offs []int64
	for _, r := range recs {
		offs = append(offs, off)
		off += frameLen(len(r))
	}
	return path, offs
}

func mutateFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedSegments damages the first of two segments by hand and
// checks that the damage is reported with file and offset while every
// other record, in that segment and the later one, is delivered.
func TestDamagedSegments(t *testing.T) {
	first := payloads("first", 5)
	later := payloads("later", 3)
	tests := []struct {
		name   string
		mutate func(b []byte, offs []int64) []byte
		lost   []int // indexes of first that are not delivered
		want   func(path string, offs []int64, size int64) []Damage
	}{
		{
			name:   "torn last record",
			mutate: func(b []byte, offs []int64) []byte { return b[:len(b)-5] },
			lost:   []int{4},
			want: func(path string, offs []int64, size int64) []Damage {
				return []Damage{{File: path, Offset: offs[4], Length: size - offs[4], Reason: "truncated record", TornTail: true}}
			},
		},
		{
			name:   "half a header after the last record",
			mutate: func(b []byte, offs []int64) []byte { return append(b, appendFrame(nil, []byte("x"))[:9]...) },
			want: func(path string, offs []int64, size int64) []Damage {
				return []Damage{{File: path, Offset: size - 9, Length: 9, Reason: "truncated record", TornTail: true}}
			},
		},
		{
			// The header checksum covers the payload checksum field.
			name: "flipped checksum byte in the middle",
			mutate: func(b []byte, offs []int64) []byte {
				b[offs[2]+8] ^= 0xFF
				return b
			},
			lost: []int{2},
			want: func(path string, offs []int64, size int64) []Damage {
				return []Damage{{File: path, Offset: offs[2], Length: offs[3] - offs[2], Reason: "bad header"}}
			},
		},
		{
			name: "flipped payload byte and torn tail",
			mutate: func(b []byte, offs []int64) []byte {
				b[offs[1]+frameHeaderLen] ^= 0x01
				return b[:len(b)-1]
			},
			lost: []int{1, 4},
			want: func(path string, offs []int64, size int64) []Damage {
				return []Damage{
					{File: path, Offset: offs[1], Length: offs[2] - offs[1], Reason: "checksum mismatch"},
					{File: path, Offset: offs[4], Length: size - offs[4], Reason: "truncated record", TornTail: true},
				}
			},
		},
		{
			name: "damaged segment header",
			mutate: func(b []byte, offs []int64) []byte {
				b[3] ^= 0xFF
				return b
			},
			want: func(path string, offs []int64, size int64) []Damage {
				return []Damage{{File: path, Offset: 0, Length: headerLen, Reason: reasonBadHead}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := spoolFile(t, dir, first)
			spoolFile(t, dir, later)
			mutateFile(t, path, func(b []byte) []byte { return tt.mutate(b, offs) })
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}

			s, rec := open(t, Config{Dir: dir})
			if diff := cmp.Diff(tt.want(path, offs, fi.Size()), rec.Damage); diff != "" {
				t.Errorf("Recovery.Damage (-want +got):\n%s", diff)
			}
			var want []string
			for i, r := range first {
				if !contains(tt.lost, i) {
					want = append(want, string(r))
				}
			}
			want = append(want, strs(later)...)
			if rec.Records != len(want) {
				t.Errorf("Recovery.Records = %d, want %d", rec.Records, len(want))
			}
			got := drain(t, s, len(want))
			if diff := cmp.Diff(want, data(got)); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			if st := s.Stats(); st.Damaged != uint64(len(rec.Damage)) {
				t.Errorf("Stats.Damaged = %d, want %d (each range counted once)", st.Damaged, len(rec.Damage))
			}
			// Acknowledging the records completes the damaged segment too.
			if err := s.Ack(positions(got)...); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("damaged segment still present after acknowledging its records (stat: %v)", err)
			}
		})
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestDamageInOwnSegment corrupts a record of the live segment on disk:
// Next reports it through the counters and skips it.
func TestDamageInOwnSegment(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Config{Dir: dir})
	recs := payloads("own", 3)
	if err := s.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	off := int64(headerLen) + frameLen(len(recs[0])) + frameHeaderLen
	if _, err := s.active.f.WriteAt([]byte{'#'}, off); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 2)
	if diff := cmp.Diff([]string{string(recs[0]), string(recs[2])}, data(got)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Damaged != 1 {
		t.Errorf("Stats.Damaged = %d, want 1", st.Damaged)
	}
}

// TestOwnSegmentTruncatedBehindOurBack cuts the live segment short: the
// missing records are reported, and appends and reads go on.
func TestOwnSegmentTruncatedBehindOurBack(t *testing.T) {
	s, _ := open(t, Config{})
	ctx := context.Background()
	recs := payloads("cut", 4)
	if err := s.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	keep := int64(headerLen) + frameLen(len(recs[0])) + 3
	if err := s.active.f.Truncate(keep); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 2)
	if diff := cmp.Diff([]string{string(recs[0]), "after"}, data(got)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Damaged != 1 {
		t.Errorf("Stats.Damaged = %d, want 1", st.Damaged)
	}
}
