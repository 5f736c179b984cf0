package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names and the defaults of [StreamConfig].
const (
	EventsStream = "SANDTRAIL_EVENTS"
	DLQStream    = "SANDTRAIL_DLQ"

	DefaultDuplicates       = 2 * time.Minute
	DefaultMaxAge           = 30 * 24 * time.Hour
	DefaultMaxBytes   int64 = 10 << 30 // 10 GiB
	DefaultReplicas         = 1
)

// ErrStreamConflict is wrapped by every [*ConflictError].
var ErrStreamConflict = errors.New("bus: stream exists with a conflicting config")

// StreamConfig describes one stream sandtrail owns. The zero value means
// every default; which name and subjects depends on whether it is the
// events or the dead-letter stream of [Streams].
type StreamConfig struct {
	// Name of the stream. Default EventsStream or DLQStream.
	Name string
	// Subjects the stream captures. Default [EventsWildcard] or
	// [DLQWildcard].
	Subjects []string
	// Storage is jetstream.FileStorage (the zero value, the default) or
	// jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	// Default 2 minutes.
	Duplicates time.Duration
	// MaxAge is how long a message is kept. Default 30 days; -1 keeps
	// messages forever.
	MaxAge time.Duration
	// MaxBytes bounds the stream size; the oldest messages go first.
	// Default 10 GiB; -1 means unlimited.
	MaxBytes int64
	// Replicas is the number of copies in a cluster, 1 to 5. Default 1.
	Replicas int
}

// Streams is what [EnsureStreams] makes true: the events stream and the
// dead-letter stream.
type Streams struct {
	// Events defaults to SANDTRAIL_EVENTS on sandtrail.events.>.
	Events StreamConfig
	// DLQ defaults to SANDTRAIL_DLQ on sandtrail.dlq.>.
	DLQ StreamConfig
	// Update lets EnsureStreams change an existing stream whose config
	// differs. Default false: a difference is a [*ConflictError].
	Update bool
}

// FieldDiff is one setting in which an existing stream differs from the
// wanted one. Field is the NATS name of the setting (as in `nats stream
// info --json`).
type FieldDiff struct {
	Field string
	Have  string
	Want  string
}

func (d FieldDiff) String() string {
	return fmt.Sprintf("%s: have %s, want %s", d.Field, d.Have, d.Want)
}

// ConflictError says how an existing stream differs from the config asked
// for, and why EnsureStreams left it alone.
type ConflictError struct {
	Stream string
	Diffs  []FieldDiff
	// Reason says why the stream was not updated.
	Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("bus: stream %s exists with a conflicting config: %s (%s)", e.Stream, joinDiffs(e.Diffs), e.Reason)
}

// Unwrap returns ErrStreamConflict.
func (e *ConflictError) Unwrap() error { return ErrStreamConflict }

// withDefaults validates s and fills in its defaults.
func (s Streams) withDefaults() (Streams, error) {
	var err error
	if s.Events, err = s.Events.withDefaults(EventsStream, EventsWildcard); err != nil {
		return s, err
	}
	if s.DLQ, err = s.DLQ.withDefaults(DLQStream, DLQWildcard); err != nil {
		return s, err
	}
	if s.Events.Name == s.DLQ.Name {
		return s, fmt.Errorf("bus: events and dead-letter streams share the name %s", s.Events.Name)
	}
	return s, nil
}

func (c StreamConfig) withDefaults(name, subject string) (StreamConfig, error) {
	if c.Name == "" {
		c.Name = name
	}
	if !validStreamName(c.Name) {
		return c, fmt.Errorf("bus: stream name %q: must be non-empty, without '.', '*', '>', '/', '\\' or whitespace", c.Name)
	}
	if len(c.Subjects) == 0 {
		c.Subjects = []string{subject}
	}
	c.Subjects = slices.Clone(c.Subjects)
	for _, subj := range c.Subjects {
		if !validSubject(subj) {
			return c, fmt.Errorf("bus: stream %s: invalid subject %q", c.Name, subj)
		}
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		return c, fmt.Errorf("bus: stream %s: unknown storage type %d", c.Name, c.Storage)
	}
	switch {
	case c.Duplicates == 0:
		c.Duplicates = DefaultDuplicates
	case c.Duplicates < 0:
		return c, fmt.Errorf("bus: stream %s: negative Duplicates %s", c.Name, c.Duplicates)
	}
	switch {
	case c.MaxAge == 0:
		c.MaxAge = DefaultMaxAge
	case c.MaxAge < -1:
		return c, fmt.Errorf("bus: stream %s: MaxAge %s: want -1 (unlimited) or a positive duration", c.Name, c.MaxAge)
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		return c, fmt.Errorf("bus: stream %s: Duplicates %s exceeds MaxAge %s", c.Name, c.Duplicates, c.MaxAge)
	}
	switch {
	case c.MaxBytes == 0:
		c.MaxBytes = DefaultMaxBytes
	case c.MaxBytes < -1:
		return c, fmt.Errorf("bus: stream %s: MaxBytes %d: want -1 (unlimited) or a positive size", c.Name, c.MaxBytes)
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return c, fmt.Errorf("bus: stream %s: Replicas %d: want 1 to 5", c.Name, c.Replicas)
	}
	return c, nil
}

// jetstream returns the NATS config of a defaulted c.
func (c StreamConfig) jetstream(description string) jetstream.StreamConfig {
	maxAge := c.MaxAge
	if maxAge < 0 {
		maxAge = 0 // NATS: 0 is unlimited
	}
	return jetstream.StreamConfig{
		Name:              c.Name,
		Description:       description,
		Subjects:          c.Subjects,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxBytes:          c.MaxBytes,
		MaxAge:            maxAge,
		Storage:           c.Storage,
		Replicas:          c.Replicas,
		Duplicates:        c.Duplicates,
	}
}

// EnsureStreams makes sure the events and dead-letter streams exist as cfg
// says. It creates a missing stream. It leaves an existing stream alone when
// every setting sandtrail manages (subjects, storage, replicas, retention,
// discard, message, byte and age limits, duplicate window) matches, and
// otherwise returns a [*ConflictError] listing each difference, unless
// cfg.Update is set: then it updates those settings, keeping any other
// setting of the stream as it is, and still refuses a storage change, which
// NATS cannot make in place. It never reuses a stream silently.
//
// In a cluster, the JetStream API may answer "temporarily unavailable" until
// a meta leader is elected; the caller retries.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Streams) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if err := ensureStream(ctx, js, c.Events.jetstream("sandtrail OCSF events"), c.Update); err != nil {
		return err
	}
	return ensureStream(ctx, js, c.DLQ.jetstream("sandtrail dead letters"), c.Update)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, update bool) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("bus: create stream %s: %w", want.Name, err)
		}
		// Another process created it in between, differently: compare.
		s, err = js.Stream(ctx, want.Name)
	}
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	diffs := diffStream(have, want)
	if len(diffs) == 0 {
		return nil
	}
	if !update {
		return &ConflictError{Stream: want.Name, Diffs: diffs, Reason: "set Update to change it"}
	}
	if have.Storage != want.Storage {
		return &ConflictError{Stream: want.Name, Diffs: diffs, Reason: "NATS cannot change the storage of a stream in place: move its data to a new stream"}
	}
	merged := have
	merged.Subjects = want.Subjects
	merged.Retention = want.Retention
	merged.Discard = want.Discard
	merged.MaxMsgs = want.MaxMsgs
	merged.MaxMsgsPerSubject = want.MaxMsgsPerSubject
	merged.MaxBytes = want.MaxBytes
	merged.MaxAge = want.MaxAge
	merged.Duplicates = want.Duplicates
	merged.Replicas = want.Replicas
	if _, err := js.UpdateStream(ctx, merged); err != nil {
		return fmt.Errorf("bus: update stream %s (%s): %w", want.Name, joinDiffs(diffs), err)
	}
	return nil
}

// diffStream lists the managed settings in which have differs from want.
func diffStream(have, want jetstream.StreamConfig) []FieldDiff {
	var diffs []FieldDiff
	add := func(field string, h, w string) {
		if h != w {
			diffs = append(diffs, FieldDiff{Field: field, Have: h, Want: w})
		}
	}
	add("subjects", subjectSet(have.Subjects), subjectSet(want.Subjects))
	add("storage", strings.ToLower(have.Storage.String()), strings.ToLower(want.Storage.String()))
	add("num_replicas", strconv.Itoa(max(have.Replicas, 1)), strconv.Itoa(max(want.Replicas, 1)))
	add("retention", have.Retention.String(), want.Retention.String())
	add("discard", have.Discard.String(), want.Discard.String())
	add("max_msgs", limit(have.MaxMsgs), limit(want.MaxMsgs))
	add("max_msgs_per_subject", limit(have.MaxMsgsPerSubject), limit(want.MaxMsgsPerSubject))
	add("max_bytes", bytesLimit(have.MaxBytes), bytesLimit(want.MaxBytes))
	add("max_age", age(have.MaxAge), age(want.MaxAge))
	add("duplicate_window", have.Duplicates.String(), want.Duplicates.String())
	return diffs
}

func joinDiffs(diffs []FieldDiff) string {
	s := make([]string, len(diffs))
	for i, d := range diffs {
		s[i] = d.String()
	}
	return strings.Join(s, "; ")
}

func subjectSet(subjects []string) string {
	s := slices.Clone(subjects)
	slices.Sort(s)
	return "[" + strings.Join(slices.Compact(s), " ") + "]"
}

func limit(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func bytesLimit(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	if n >= 1<<30 && n%(1<<30) == 0 {
		return strconv.FormatInt(n>>30, 10) + " GiB"
	}
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

func age(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// validStreamName follows the rules of the NATS server for stream names.
func validStreamName(name string) bool {
	return name != "" && !strings.ContainsAny(name, ".*>/\\ \t\r\n\f\v")
}

// validSubject reports whether s is a valid subject or filter: non-empty
// tokens without whitespace, wildcards only as whole tokens, '>' last.
func validSubject(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n\f\v") {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return false
		case t == ">":
			if i != len(tokens)-1 {
				return false
			}
		case t == "*":
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}
