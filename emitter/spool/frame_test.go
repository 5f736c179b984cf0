package spool

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scanAll reads every frame of b and returns payloads and damage.
func scanAll(t testing.TB, b []byte) (offs []int64, payloads []string, dmg []damage) {
	t.Helper()
	fr := newFrameReader(bytes.NewReader(b), 0, int64(len(b)))
	for {
		off, p, d, err := fr.next()
		if errors.Is(err, io.EOF) {
			return offs, payloads, dmg
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if d != nil {
			dmg = append(dmg, *d)
			continue
		}
		offs = append(offs, off)
		payloads = append(payloads, string(p))
	}
}

func TestFrameReaderDamage(t *testing.T) {
	recs := []string{"alpha", `{"class_uid":1007}`, "", "gamma-gamma"}
	var clean []byte
	var offs []int64
	for _, r := range recs {
		offs = append(offs, int64(len(clean)))
		clean = appendFrame(clean, []byte(r))
	}
	end := int64(len(clean))
	tests := []struct {
		name     string
		mutate   func([]byte) []byte
		wantRecs []string
		wantDmg  []damage
	}{
		{"clean", func(b []byte) []byte { return b }, recs, nil},
		{"flipped payload byte", func(b []byte) []byte { b[offs[1]+frameHeaderLen+3] ^= 0x40; return b },
			[]string{"alpha", "", "gamma-gamma"}, []damage{{off: offs[1], end: offs[2], reason: "checksum mismatch"}}},
		{"flipped length byte", func(b []byte) []byte { b[offs[0]+4] ^= 0x01; return b },
			recs[1:], []damage{{off: 0, end: offs[1], reason: "bad header"}}},
		{"torn last record", func(b []byte) []byte { return b[:end-3] },
			recs[:3], []damage{{off: offs[3], end: end - 3, reason: "truncated record", tail: true}}},
		{"torn header", func(b []byte) []byte { return b[:offs[3]+7] },
			recs[:3], []damage{{off: offs[3], end: offs[3] + 7, reason: "truncated record", tail: true}}},
		{"zeros after the end", func(b []byte) []byte { return append(b, make([]byte, 100)...) },
			recs, []damage{{off: end, end: end + 100, reason: "bad header", tail: true}}},
		{"garbage in the middle", func(b []byte) []byte {
			out := append([]byte{}, b[:offs[2]]...)
			out = append(out, 0xFE, 'S', 'R', 'C', 1, 2, 3)
			return append(out, b[offs[2]:]...)
		}, recs, []damage{{off: offs[2], end: offs[2] + 7, reason: "bad header"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(append([]byte{}, clean...))
			_, got, dmg := scanAll(t, b)
			if diff := cmp.Diff(tt.wantRecs, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDmg, dmg, cmp.AllowUnexported(damage{})); diff != "" {
				t.Errorf("damage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFrameReaderLargeRecordAcrossWindows(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*window+17)
	b := appendFrame(nil, []byte("a"))
	b = appendFrame(b, big)
	b = append(b, 0xFE, 0, 0) // torn
	b = appendFrame(b, []byte("after"))
	_, got, dmg := scanAll(t, b)
	if len(got) != 3 || got[1] != string(big) || got[2] != "after" {
		t.Errorf("got %d records, want a, big, after", len(got))
	}
	if len(dmg) != 1 || dmg[0].tail {
		t.Errorf("damage = %+v, want one corrupt range", dmg)
	}
}

// FuzzFrameReader checks that any input is split into records and damaged
// ranges that cover it exactly, and that valid frames after garbage are
// found again.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(nil, []byte(`{"a":1}`)))
	f.Add(append(appendFrame(nil, []byte("x")), 0xFE, 'S', 'R', 'C', 0xFF))
	f.Fuzz(func(t *testing.T, b []byte) {
		tail := appendFrame(nil, []byte("sentinel"))
		in := append(append([]byte{}, b...), tail...)
		fr := newFrameReader(bytes.NewReader(in), 0, int64(len(in)))
		pos := int64(0)
		var last string
		for {
			off, p, d, err := fr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if off != pos {
				t.Fatalf("gap: at %d, expected %d", off, pos)
			}
			if d != nil {
				if d.end <= d.off {
					t.Fatalf("empty damage %+v", d)
				}
				pos = d.end
				continue
			}
			pos = off + frameLen(len(p))
			last = string(p)
		}
		if pos != int64(len(in)) {
			t.Fatalf("stopped at %d of %d", pos, len(in))
		}
		// The sentinel is the last record, unless the input forged a
		// frame (with both checksums) whose payload swallows it.
		if last != "sentinel" && !bytes.HasSuffix([]byte(last), tail) {
			t.Fatalf("last record %q, want the sentinel", last)
		}
	})
}
