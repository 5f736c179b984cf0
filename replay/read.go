// Package replay reads sandtrail's events back from the JetStream stream:
// by event time, run, OCSF class, minimum severity and host, in stream
// order, with an ordered consumer that leaves nothing behind on the
// server. It is the reading half of `sandtrail replay` and `sandtrail
// verify`; printing and sinks are the caller's.
//
// Guarantees: [Read] delivers exactly the events whose subject and
// envelope match the [Filter] among those the stream held when Read
// started (events published later are not read, so a replay ends), each
// once, in stream order. It returns only after its consumer stopped, and
// when ctx ends it first hands over what it has read.
package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
)

// Defaults of Config.
const (
	DefaultClockSkew = 5 * time.Minute
	DefaultBatch     = 512
)

// Config says what Read reads. The zero value reads every event of
// bus.EventsStream.
type Config struct {
	// Stream to read. Default bus.EventsStream.
	Stream string
	// Filter selects the events handed over.
	Filter Filter
	// ClockSkew is how far before Filter.Since the consumer starts, by
	// the stream's own timestamps: an event is stored after it was
	// emitted, but the emitting host's clock may run ahead of the
	// server's. Default 5 minutes.
	ClockSkew time.Duration
	// MaxDelay, when positive with Filter.Until set, stops reading at the
	// first message the stream stored later than Until+MaxDelay: faster
	// for an old time range, but an event that waited longer than
	// MaxDelay in an emitter's spool (an outage) is then missed. Default
	// 0: read to the stream's last message at start, which finds them.
	MaxDelay time.Duration
	// Batch is the most messages handed to the callback at once, and half
	// the client's pull buffer. Default 512.
	Batch int
	// Progress, if set, is called after each batch and once at the end,
	// on Read's goroutine.
	Progress func(Progress)
	// Unreadable, if set, is called (on Read's goroutine, in stream
	// order with the batches) with each message whose envelope cannot be
	// read, which is otherwise only counted in Stats.Malformed. It may
	// keep data.
	Unreadable func(seq uint64, data []byte, err error)
}

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		c.Stream = bus.EventsStream
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	switch {
	case c.ClockSkew < 0:
		return c, fmt.Errorf("replay: negative ClockSkew %s", c.ClockSkew)
	case c.MaxDelay < 0:
		return c, fmt.Errorf("replay: negative MaxDelay %s", c.MaxDelay)
	case c.Batch < 0:
		return c, fmt.Errorf("replay: negative Batch %d", c.Batch)
	}
	return c, c.Filter.Validate()
}

// Message is one event read from the stream.
type Message struct {
	StreamSeq uint64    // stream sequence
	Stored    time.Time // when the stream stored it
	Subject   string
	// Data is the event as published. The callback may keep it, and
	// must not modify it: the Envelope's strings share its memory.
	Data []byte
	Envelope
}

// Progress counts what Read has done so far.
type Progress struct {
	Scanned uint64 // messages read from the stream
	Matched uint64 // messages handed to the callback
	// Total is how many messages the consumer had to deliver when it
	// started: the denominator of a progress bar (the stream may drop
	// old or gain new messages meanwhile, so it is an estimate).
	Total uint64
}

// Stats is what Read did.
type Stats struct {
	Progress
	// Malformed counts messages whose envelope could not be read
	// (ParseEnvelope); they are skipped.
	Malformed uint64
	// FirstSeq and LastSeq are the stream sequences of the first and
	// last message read; 0 when none was.
	FirstSeq, LastSeq uint64
	// EndSeq is the stream's last sequence when Read started: reading
	// stops there.
	EndSeq uint64
}

// ErrNoStream: the stream does not exist.
var ErrNoStream = errors.New("replay: no such stream")

// Read reads the stream from Filter.Since (less ClockSkew) or its
// beginning to its last message at start (or to Until+MaxDelay), and
// calls fn with the matching messages in batches, in stream order. fn's
// error stops Read and is returned.
//
// When ctx ends, Read hands what it has read to fn, then returns ctx's
// error with the stats so far: an interrupted replay says how far it got.
func Read(ctx context.Context, js jetstream.JetStream, cfg Config, fn func([]Message) error) (Stats, error) {
	var st Stats
	cfg, err := cfg.withDefaults()
	if err != nil {
		return st, err
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, fmt.Errorf("%w: %s", ErrNoStream, cfg.Stream)
	}
	if err != nil {
		return st, fmt.Errorf("replay: stream %s: %w", cfg.Stream, err)
	}
	state := stream.CachedInfo().State
	st.EndSeq = state.LastSeq
	if state.Msgs == 0 {
		return st, nil
	}
	subjects, err := cfg.Filter.subjects()
	if err != nil { // not reached: Validate ran
		return st, fmt.Errorf("replay: %w", err)
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !cfg.Filter.Since.IsZero() {
		start := cfg.Filter.Since.Add(-cfg.ClockSkew)
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return st, fmt.Errorf("replay: consumer on %s: %w", cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * cfg.Batch))
	if err != nil {
		return st, fmt.Errorf("replay: consume %s: %w", cfg.Stream, err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil {
		st.Total = ci.NumPending
	}
	if st.Total == 0 {
		return st, nil
	}

	batch := make([]Message, 0, cfg.Batch)
	flush := func() error {
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if cfg.Progress != nil {
			cfg.Progress(st.Progress)
		}
		return nil
	}
	var stopAfter time.Time
	if cfg.MaxDelay > 0 && !cfg.Filter.Until.IsZero() {
		stopAfter = cfg.Filter.Until.Add(cfg.MaxDelay)
	}
	next := jetstream.NextContext(ctx)
	for {
		msg, err := it.Next(next)
		if err != nil {
			if ctx.Err() != nil {
				if ferr := flush(); ferr != nil {
					return st, ferr
				}
				return st, ctx.Err()
			}
			return st, fmt.Errorf("replay: read %s: %w", cfg.Stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return st, fmt.Errorf("replay: read %s: %w", cfg.Stream, err)
		}
		seq := md.Sequence.Stream
		if seq > st.EndSeq || (!stopAfter.IsZero() && md.Timestamp.After(stopAfter)) {
			break
		}
		st.Scanned++
		if st.FirstSeq == 0 {
			st.FirstSeq = seq
		}
		st.LastSeq = seq
		data := msg.Data()
		env, err := ParseEnvelope(data)
		switch {
		case err != nil:
			st.Malformed++
			if cfg.Unreadable != nil {
				if ferr := flush(); ferr != nil {
					return st, ferr
				}
				cfg.Unreadable(seq, data, err)
			}
		case cfg.Filter.match(&env):
			st.Matched++
			batch = append(batch, Message{StreamSeq: seq, Stored: md.Timestamp, Subject: msg.Subject(), Data: data, Envelope: env})
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return st, err
				}
			}
		}
		if seq >= st.EndSeq || md.NumPending == 0 {
			break
		}
	}
	return st, flush()
}
