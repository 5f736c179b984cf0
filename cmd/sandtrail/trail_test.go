package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/replay"
	"github.com/sandtrail/sandtrail/schema"
)

// Helpers for the replay and verify tests: trails sealed with the chain
// package over the golden events, and an embedded server to publish them.

// trailKey returns a signer and its public key in a file, as `verify --key`
// takes it.
func trailKey(t *testing.T) (*chain.Signer, string) {
	t.Helper()
	s, err := chain.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trail.pub")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(s.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, p
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// encodeMap encodes m compactly, class_uid first.
func encodeMap(t *testing.T, m map[string]any) []byte {
	t.Helper()
	rest := map[string]any{}
	for k, v := range m {
		if k != "class_uid" {
			rest[k] = v
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	cls, _ := json.Marshal(m["class_uid"])
	return append([]byte(`{"class_uid":`+string(cls)+`,`), b[1:]...)
}

// sealedTrail returns run's n events: the golden events re-stamped as one
// run, times spread from start a second apart, sealed, the last final and
// signed.
func sealedTrail(t *testing.T, run string, n int, signer *chain.Signer, start time.Time) [][]byte {
	t.Helper()
	files, err := filepath.Glob("../../testdata/events/valid/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("golden events: %v", err)
	}
	s, err := chain.NewSealer(run, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range n {
		b, err := os.ReadFile(files[i%len(files)])
		if err != nil {
			t.Fatal(err)
		}
		m := decodeMap(t, b)
		md := m["metadata"].(map[string]any)
		md["correlation_uid"], md["sequence"] = run, json.Number(strconv.Itoa(i+1))
		runHash := sha256.Sum256([]byte(run))
		md["uid"] = fmt.Sprintf("019ac6e2-%x-7000-8000-%012d", runHash[:2], i+1)
		m["time"] = json.Number(strconv.FormatInt(start.Add(time.Duration(i)*time.Second).UnixMilli(), 10))
		if out[i], err = s.Seal(encodeMap(t, m), i == n-1); err != nil {
			t.Fatalf("seal %d: %v", i+1, err)
		}
		if err := schema.Validate(out[i]); err != nil {
			t.Fatalf("sealed event %d invalid: %v", i+1, err)
		}
	}
	return out
}

// tamper edits an event through a decoded copy; with rehash the link's
// hash is recomputed, as anyone who read docs/INTEGRITY.md can.
func tamper(t *testing.T, ev []byte, rehash bool, f func(m map[string]any)) []byte {
	t.Helper()
	m := decodeMap(t, ev)
	f(m)
	if rehash {
		l := m["unmapped"].(map[string]any)[chain.LinkMember].(map[string]any)
		delete(l, "hash")
		canon, err := chain.Canonical(nil, encodeMap(t, m))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(canon)
		l["hash"] = hex.EncodeToString(sum[:])
	}
	return encodeMap(t, m)
}

func writeNDJSON(t *testing.T, events [][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(p, append(bytes.Join(events, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testServer is an embedded NATS server with sandtrail's streams.
type testServer struct {
	url string
	js  jetstream.JetStream
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(ctx, js, bus.Streams{
		Events: bus.StreamConfig{Storage: jetstream.MemoryStorage, MaxBytes: 256 << 20, MaxAge: -1},
		DLQ:    bus.StreamConfig{Storage: jetstream.MemoryStorage, MaxBytes: 1 << 20},
	}); err != nil {
		t.Fatal(err)
	}
	return &testServer{url: srv.ClientURL(), js: js}
}

// publish replaces the stream's content with events, on the subjects the
// emitter would use, without message ids (as a retry after the duplicate
// window lands).
func (s *testServer) publish(t *testing.T, events [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		subject := bus.EventsPrefix + ".0.0.unknown" // unreadable events still land
		if env, err := replay.ParseEnvelope(ev); err == nil {
			subject = bus.EventSubject(env.ClassUID, env.SeverityID, env.Host)
		}
		if _, err := s.js.Publish(ctx, subject, ev); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}
