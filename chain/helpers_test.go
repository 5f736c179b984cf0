package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sandtrail/sandtrail/schema"
)

// testSigner is a fixed signing key for tests.
func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenEvents returns the valid golden events, compact, class_uid first.
func goldenEvents(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("../testdata/events/valid/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden events: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, encodeEvent(t, decodeEvent(t, b)))
	}
	return out
}

func decodeEvent(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// encodeEvent encodes m compactly with class_uid first, as the emitter
// does.
func encodeEvent(t testing.TB, m map[string]any) []byte {
	t.Helper()
	cls, ok := m["class_uid"]
	rest := make(map[string]any, len(m))
	for k, v := range m {
		if k != "class_uid" {
			rest[k] = v
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return b
	}
	c, _ := json.Marshal(cls)
	out := append([]byte(`{"class_uid":`), c...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}

// restamp sets the envelope fields the emitter sets before sealing.
func restamp(t testing.TB, ev []byte, run string, seq int) []byte {
	t.Helper()
	m := decodeEvent(t, ev)
	md := m["metadata"].(map[string]any)
	md["correlation_uid"] = run
	md["sequence"] = json.Number(strconv.Itoa(seq))
	md["uid"] = fmt.Sprintf("019ac6e2-0000-7000-8000-%012x", uint64(len(run))<<32|uint64(seq)+uint64(hashString(run)))
	return encodeEvent(t, m)
}

func hashString(s string) uint32 {
	h := sha256.Sum256([]byte(s))
	return uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
}

// sealRun returns a run of n sealed events made from the golden events,
// the last one final and, with a signer, signed. Every event is checked
// against the OCSF validator.
func sealRun(t testing.TB, run string, n int, signer *Signer) [][]byte {
	t.Helper()
	golden := goldenEvents(t)
	s, err := NewSealer(run, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range n {
		ev := restamp(t, golden[i%len(golden)], run, i+1)
		if out[i], err = s.Seal(ev, i == n-1); err != nil {
			t.Fatalf("Seal event %d: %v", i+1, err)
		}
		if err := schema.Validate(out[i]); err != nil {
			t.Fatalf("sealed event %d is not valid OCSF: %v", i+1, err)
		}
	}
	return out
}

// edit changes an event as a tamperer would, through a decoded copy: the
// function changes the map, and with rehash the link's hash is
// recomputed (the format is public; the signing key is not).
func edit(t testing.TB, ev []byte, rehash bool, f func(m map[string]any)) []byte {
	t.Helper()
	m := decodeEvent(t, ev)
	f(m)
	if rehash {
		link := m["unmapped"].(map[string]any)[LinkMember].(map[string]any)
		delete(link, "hash")
		sig, hadSig := link["sig"]
		delete(link, "sig")
		canon, err := Canonical(nil, encodeEvent(t, m))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(canon)
		link["hash"] = hex.EncodeToString(sum[:])
		if hadSig {
			link["sig"] = sig
		}
	}
	return encodeEvent(t, m)
}

func linkOf(m map[string]any) map[string]any {
	return m["unmapped"].(map[string]any)[LinkMember].(map[string]any)
}

// verify runs a Verifier over events, origin "trail.ndjson:<line>".
func verify(events [][]byte, cfg VerifierConfig) *Report {
	v := NewVerifier(cfg)
	for i, ev := range events {
		v.Add(ev, Origin{Source: "trail.ndjson", Index: int64(i + 1)})
	}
	return v.Report()
}
