package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSealLink(t *testing.T) {
	signer := testSigner(t)
	run := sealRun(t, "run-a", 3, signer)
	var prev string = strings.Repeat("0", 64)
	for i, ev := range run {
		if !bytes.HasPrefix(ev, []byte(`{"class_uid":`)) {
			t.Errorf("event %d does not start with class_uid: %.40s", i+1, ev)
		}
		l, err := ReadLink(ev)
		if err != nil {
			t.Fatalf("ReadLink(event %d): %v", i+1, err)
		}
		want := Link{V: 1, Alg: "sha256", Run: "run-a", Seq: int64(i + 1), Prev: prev, Hash: l.Hash}
		if i == 2 {
			want.Final, want.Count, want.KeyID, want.Sig = true, 3, signer.KeyID(), l.Sig
		}
		if diff := cmp.Diff(want, l); diff != "" {
			t.Errorf("event %d link (-want +got):\n%s", i+1, diff)
		}
		prev = l.Hash
	}
	// The signature covers the documented message.
	l, _ := ReadLink(run[2])
	sig, _ := base64.StdEncoding.DecodeString(l.Sig)
	if !ed25519.Verify(signer.PublicKey(), SignedMessage("run-a", 3, decodeHash(l.Hash)), sig) {
		t.Errorf("final signature does not verify over SignedMessage")
	}
	if got, want := string(SignedMessage("r", 12, [32]byte{0xab})), "sandtrail-chain-v1\nr\n12\nab"+strings.Repeat("0", 62); got != want {
		t.Errorf("SignedMessage = %q, want %q", got, want)
	}
}

func TestSealMergesUnmapped(t *testing.T) {
	base := restamp(t, goldenEvents(t)[0], "run-m", 1)
	withUnmapped := edit(t, base, false, func(m map[string]any) {
		m["unmapped"] = map[string]any{"origin": "test", "n": 1}
	})
	s, _ := NewSealer("run-m", nil)
	out, err := s.Seal(withUnmapped, false)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeEvent(t, out)
	un := m["unmapped"].(map[string]any)
	if un["origin"] != "test" || un[LinkMember] == nil {
		t.Errorf("unmapped after Seal = %v, want the original members and the link", un)
	}
	// Sealing an event that already has a link replaces it.
	s2, _ := NewSealer("run-m", nil)
	again, err := s2.Seal(out, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("re-sealing a sealed event changed it:\n%s\n%s", out, again)
	}
	if n := bytes.Count(again, []byte(LinkMember)); n != 1 {
		t.Errorf("%d links in a re-sealed event, want 1", n)
	}
}

func TestSealRefuses(t *testing.T) {
	ev := restamp(t, goldenEvents(t)[0], "run-r", 1)
	tests := []struct {
		name  string
		event []byte
		want  string
	}{
		{"wrong sequence", restamp(t, ev, "run-r", 2), "metadata.sequence is 2, want 1"},
		{"wrong run", restamp(t, ev, "other", 1), `metadata.correlation_uid is "other"`},
		{"no metadata.sequence", edit(t, ev, false, func(m map[string]any) { delete(m["metadata"].(map[string]any), "sequence") }), "metadata.sequence is missing"},
		{"unmapped not an object", edit(t, ev, false, func(m map[string]any) { m["unmapped"] = "x" }), "unmapped is not an object"},
		{"not an object", []byte(`[1]`), "not a JSON object"},
		{"duplicate member", append(append([]byte{}, ev[:len(ev)-1]...), `,"class_uid":1}`...), "duplicate member name"},
		{"trailing data", append(append([]byte{}, ev...), " x"...), "data after the event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := NewSealer("run-r", nil)
			_, err := s.Seal(tt.event, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Seal error = %v, want one containing %q", err, tt.want)
			}
			if s.State() != (State{}) {
				t.Errorf("state after a refused Seal = %+v, want unchanged", s.State())
			}
		})
	}
	if _, err := NewSealer("", nil); err == nil {
		t.Error("NewSealer with an empty run id succeeded")
	}
}

// An abandoned batch (the emitter's spool refused it) must leave no gap:
// restoring the saved state seals the next events exactly as if the batch
// had never been sealed.
func TestSealRestore(t *testing.T) {
	golden := goldenEvents(t)
	direct := sealRun(t, "run-s", 3, nil)

	s, _ := NewSealer("run-s", nil)
	if _, err := s.Seal(restamp(t, golden[0], "run-s", 1), false); err != nil {
		t.Fatal(err)
	}
	saved := s.State()
	for i := 2; i <= 3; i++ { // the batch that is abandoned
		if _, err := s.Seal(restamp(t, golden[(i-1)%len(golden)], "run-s", i), false); err != nil {
			t.Fatal(err)
		}
	}
	s.Restore(saved)
	for i := 2; i <= 3; i++ {
		got, err := s.Seal(restamp(t, golden[(i-1)%len(golden)], "run-s", i), i == 3)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, direct[i-1]) {
			t.Errorf("event %d after Restore differs from the direct run", i)
		}
	}
	if _, err := s.Seal(restamp(t, golden[0], "run-s", 4), false); !errors.Is(err, ErrFinal) {
		t.Errorf("Seal after the final event: %v, want ErrFinal", err)
	}
}

func TestAppendSealKeepsPrefix(t *testing.T) {
	ev := restamp(t, goldenEvents(t)[0], "run-p", 1)
	s, _ := NewSealer("run-p", nil)
	out, err := s.AppendSeal([]byte("header"), ev, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSealer("run-p", nil)
	plain, _ := s2.Seal(ev, false)
	if string(out) != "header"+string(plain) {
		t.Errorf("AppendSeal = %.60s..., want the prefix then the sealed event", out)
	}
}

// TestSkipString: the end of a string is the first quote no odd run of
// backslashes escapes.
func TestSkipString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // -1: unterminated
	}{
		{`"abc",`, 5},
		{`""`, 2},
		{`"a\"b"x`, 6},
		{`"a\\"x`, 5},
		{`"a\\\"b"x`, 8},
		{`"\\\\"x`, 6},
		{`"\"\"\""x`, 8},
		{`"é\u0022\\"x`, 12},
		{`"abc`, -1},
		{`"a\"`, -1},
		{`"a\\\"`, -1},
	} {
		got, err := skipString([]byte(tc.in), 0)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("skipString(%s) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("skipString(%s) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
