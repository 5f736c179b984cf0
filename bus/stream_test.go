package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
)

// newJetStream starts a server and returns a JetStream handle on it.
func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	s := startServer(t, embedded.Config{})
	nc := connect(t, bus.ConnConfig{URLs: []string{s.ClientURL()}})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamInfo(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("Stream(%s): %v", name, err)
	}
	return s.CachedInfo()
}

func streamConfig(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	return streamInfo(t, ctx, js, name).Config
}

func TestEnsureStreamsCreatesWithDefaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// The real defaults, 10 GiB included. The server reserves each
	// stream's max_bytes against its store limit (75% of the free disk by
	// default); a fixed limit keeps the test independent of the disk.
	s := startServer(t, embedded.Config{ConfigFile: writeConfig(t, "jetstream { max_file_store: 64GB }\n")})
	js, err := jetstream.New(connect(t, bus.ConnConfig{URLs: []string{s.ClientURL()}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.Streams{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	type settings struct {
		Subjects   []string
		Storage    jetstream.StorageType
		Retention  jetstream.RetentionPolicy
		Discard    jetstream.DiscardPolicy
		MaxAge     time.Duration
		MaxBytes   int64
		MaxMsgs    int64
		Duplicates time.Duration
		Replicas   int
	}
	for _, tt := range []struct {
		name    string
		subject string
	}{{bus.EventsStream, "sandtrail.events.>"}, {bus.DLQStream, "sandtrail.dlq.>"}} {
		c := streamConfig(t, ctx, js, tt.name)
		got := settings{c.Subjects, c.Storage, c.Retention, c.Discard, c.MaxAge, c.MaxBytes, c.MaxMsgs, c.Duplicates, c.Replicas}
		want := settings{
			Subjects: []string{tt.subject}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Discard: jetstream.DiscardOld, MaxAge: 30 * 24 * time.Hour, MaxBytes: 10 << 30, MaxMsgs: -1,
			Duplicates: 2 * time.Minute, Replicas: 1,
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("stream %s (-got +want):\n%s", tt.name, diff)
		}
	}

	// Idempotent: a second call with the same config changes nothing.
	if err := bus.EnsureStreams(ctx, js, bus.Streams{}); err != nil {
		t.Fatalf("EnsureStreams again: %v", err)
	}
	// Publish lands in the stream, dedup by message id works.
	for range 2 {
		if _, err := js.Publish(ctx, bus.EventSubject(2004, 4, "host"), []byte("{}"), jetstream.WithMsgID("uid-1")); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if got := streamInfo(t, ctx, js, bus.EventsStream).State.Msgs; got != 1 {
		t.Errorf("messages: got %d, want 1 (deduplicated)", got)
	}
}

func TestEnsureStreamsConflict(t *testing.T) {
	tests := []struct {
		name     string
		existing jetstream.StreamConfig
		// wantDiffs are the fields named in the conflict error.
		wantDiffs []bus.FieldDiff
		// updatable: with Update the stream ends up as wanted.
		updatable bool
	}{
		{
			name: "subjects",
			existing: jetstream.StreamConfig{Name: bus.EventsStream, Subjects: []string{"other.>"},
				MaxAge: 30 * 24 * time.Hour, MaxBytes: 64 << 20, Duplicates: 2 * time.Minute},
			wantDiffs: []bus.FieldDiff{{Field: "subjects", Have: "[other.>]", Want: "[sandtrail.events.>]"}},
			updatable: true,
		},
		{
			name: "retention limits",
			existing: jetstream.StreamConfig{Name: bus.EventsStream, Subjects: []string{bus.EventsWildcard},
				MaxAge: time.Hour, MaxBytes: 1 << 20, MaxMsgs: 10, Duplicates: time.Minute},
			wantDiffs: []bus.FieldDiff{
				{Field: "max_msgs", Have: "10", Want: "unlimited"},
				{Field: "max_bytes", Have: "1 MiB", Want: "64 MiB"},
				{Field: "max_age", Have: "1h0m0s", Want: "30d"},
				{Field: "duplicate_window", Have: "1m0s", Want: "2m0s"},
			},
			updatable: true,
		},
		{
			name: "storage",
			existing: jetstream.StreamConfig{Name: bus.EventsStream, Subjects: []string{bus.EventsWildcard},
				Storage: jetstream.MemoryStorage, MaxAge: 30 * 24 * time.Hour, MaxBytes: 64 << 20, Duplicates: 2 * time.Minute},
			wantDiffs: []bus.FieldDiff{{Field: "storage", Have: "memory", Want: "file"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			js := newJetStream(t)
			if _, err := js.CreateStream(ctx, tt.existing); err != nil {
				t.Fatalf("CreateStream: %v", err)
			}
			cfg := testStreams()

			err := bus.EnsureStreams(ctx, js, cfg)
			var conflict *bus.ConflictError
			if !errors.As(err, &conflict) {
				t.Fatalf("EnsureStreams: got %v, want a *ConflictError", err)
			}
			if !errors.Is(err, bus.ErrStreamConflict) {
				t.Errorf("EnsureStreams: got %v, want errors.Is ErrStreamConflict", err)
			}
			if diff := cmp.Diff(conflict.Diffs, tt.wantDiffs); diff != "" {
				t.Errorf("Diffs (-got +want):\n%s", diff)
			}
			for _, d := range tt.wantDiffs {
				if want := d.String(); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			t.Logf("error: %v", err)
			if got := streamConfig(t, ctx, js, bus.EventsStream); !cmp.Equal(got.Subjects, tt.existing.Subjects) || got.Storage != tt.existing.Storage {
				t.Errorf("stream changed without Update: %+v", got)
			}

			cfg.Update = true
			err = bus.EnsureStreams(ctx, js, cfg)
			if !tt.updatable {
				if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "cannot change the storage") {
					t.Fatalf("EnsureStreams with Update: got %v, want a conflict that says storage cannot change", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureStreams with Update: %v", err)
			}
			// Now in line: a call without Update is a no-op.
			cfg.Update = false
			if err := bus.EnsureStreams(ctx, js, cfg); err != nil {
				t.Errorf("EnsureStreams after the update: %v", err)
			}
		})
	}
}

func TestEnsureStreamsUpdateKeepsOtherSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	js := newJetStream(t)
	existing := jetstream.StreamConfig{Name: bus.EventsStream, Subjects: []string{bus.EventsWildcard},
		MaxAge: time.Hour, MaxBytes: 64 << 20, Duplicates: time.Minute, Metadata: map[string]string{"owner": "soc"}}
	if _, err := js.CreateStream(ctx, existing); err != nil {
		t.Fatal(err)
	}
	cfg := testStreams()
	cfg.Update = true
	if err := bus.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	got := streamConfig(t, ctx, js, bus.EventsStream)
	if got.MaxAge != bus.DefaultMaxAge || got.Metadata["owner"] != "soc" {
		t.Errorf("after update: got max_age %s, metadata %v; want %s and owner=soc kept", got.MaxAge, got.Metadata, bus.DefaultMaxAge)
	}
}

func TestEnsureStreamsValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     bus.Streams
		wantErr string
	}{
		{"bad name", bus.Streams{Events: bus.StreamConfig{Name: "a.b"}}, `stream name "a.b"`},
		{"same names", bus.Streams{DLQ: bus.StreamConfig{Name: bus.EventsStream}}, "share the name"},
		{"bad subject", bus.Streams{Events: bus.StreamConfig{Subjects: []string{"a.>.b"}}}, `invalid subject "a.>.b"`},
		{"replicas", bus.Streams{Events: bus.StreamConfig{Replicas: 7}}, "Replicas 7"},
		{"max age", bus.Streams{Events: bus.StreamConfig{MaxAge: -2}}, "MaxAge"},
		{"max bytes", bus.Streams{DLQ: bus.StreamConfig{MaxBytes: -5}}, "MaxBytes -5"},
		{"dup window", bus.Streams{Events: bus.StreamConfig{MaxAge: time.Minute, Duplicates: time.Hour}}, "exceeds MaxAge"},
		{"storage", bus.Streams{Events: bus.StreamConfig{Storage: 9}}, "unknown storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Validation happens before any request: a nil JetStream is fine.
			err := bus.EnsureStreams(t.Context(), nil, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("EnsureStreams: got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
