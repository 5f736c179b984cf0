package collector

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/schema"
)

// Defaults of [Config] and [SinkConfig].
const (
	DefaultMaxEvents    = 256
	DefaultMaxWait      = time.Second
	DefaultMaxDeliver   = 20
	DefaultAckWait      = 30 * time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = time.Minute
	DefaultMaxFailing   = 5 * time.Minute
	DefaultDrainTimeout = 10 * time.Second
	DefaultRawDataMax   = 64 << 10
	DefaultLagInterval  = 5 * time.Second

	// MaxRawDataMax bounds RawDataMax: JSON escaping can grow a byte to six
	// (\u0001), and a dead letter must stay under the validator's 1 MiB.
	MaxRawDataMax = 128 << 10
	// ConsumerPrefix starts the name of every durable consumer the
	// collector creates: sandtrail-<sink name>.
	ConsumerPrefix = "sandtrail-"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("collector: closed")

// Config configures a [Collector]. The zero value of each field means the
// default in its comment; JetStream and at least one sink are required.
type Config struct {
	// JetStream reads the events stream and publishes dead letters and the
	// collector's lifecycle events. Required. Create it with
	// jetstream.WithPublishAsyncTimeout if you share it with an emitter.
	JetStream jetstream.JetStream
	// Stream is the events stream. Default bus.EventsStream.
	Stream string
	// DLQStream is the stream dead letters must land in (checked on each
	// publish). Default bus.DLQStream.
	DLQStream string
	// Sinks are exported to, each by its own durable consumer. Required.
	// The Collector owns them: Close closes them.
	Sinks []SinkConfig
	// Validator checks every event read from the stream. Default: the zero
	// schema.Validator (1 MiB per event).
	Validator *schema.Validator
	// RawDataMax bounds the prefix of an unacceptable message kept in its
	// dead letter's raw_data (raw_data_size and raw_data_hash always
	// describe the whole message). Default 64 KiB, at most MaxRawDataMax.
	RawDataMax int
	// MaxFailing is how long a sink may fail before Health reports it.
	// Default 5 minutes.
	MaxFailing time.Duration
	// DrainTimeout bounds how long stopping may take once Run's context
	// ends: the sinks exporting up to the collector's stop event, then the
	// batches being written finishing (at least a second for those).
	// Close's context bounds it too. Default 10s.
	DrainTimeout time.Duration
	// LagInterval is how often each consumer's lag is read from the
	// server. Default 5s.
	LagInterval time.Duration
	// Registry receives the collector's metrics and the sinks' own
	// (see [Instrumented]). Default: a new registry, see
	// [Collector.Registry]; never the global one.
	Registry *prometheus.Registry
	// RunID is the correlation_uid of the collector's own events (its
	// lifecycle and its dead letters). Default "collector-" and a UUID.
	RunID string
	// Device is the device of the collector's own events (normally
	// emitter.DetectHost's). Default: none.
	Device *schema.Device
	// Actor is the actor of the collector's own events (this process).
	// Default: none.
	Actor *schema.Actor
	// Signer signs the last event of the collector's own trail (its stop).
	// Default: none; the trail is still chained and counted.
	Signer *chain.Signer
	// ProductVersion is metadata.product.version. Default "devel".
	ProductVersion string
	// Now is the clock for the collector's own events and for health.
	// Default time.Now.
	Now func() time.Time
	// Logger receives the collector's logs.
	Logger zerolog.Logger
}

// SinkConfig is one sink and how it is fed.
type SinkConfig struct {
	// Name identifies the sink in logs, metrics and dead letters, and names
	// its durable consumer sandtrail-<Name>: renaming a sink starts it
	// from the beginning of the stream. Required; letters, digits, '-'
	// and '_', at most 64.
	Name string
	// Type is the sink's kind (ndjson, splunk...), for logs and the
	// lifecycle events. Optional.
	Type string
	// Sink receives the batches. Required.
	Sink Sink
	// Filter selects the events this sink gets. Zero: all of them.
	Filter Filter
	// MaxEvents is the largest batch handed to Write. Default 256.
	MaxEvents int
	// MaxWait is the longest an event waits for its batch to fill: the
	// batch latency when traffic is low. Default 1s; at most AckWait/3.
	MaxWait time.Duration
	// MaxDeliver is how many times the stream delivers an event to this
	// sink. The sink sees it at most MaxDeliver-1 times; the last delivery
	// is its dead letter, so even an event that crashes the collector
	// each time leaves a record. Default 20, at least 2.
	MaxDeliver int
	// AckWait is how long the server waits for an acknowledgement before
	// redelivering; the collector keeps messages it still works on alive
	// (in-progress acknowledgements every AckWait/3), so this only bounds
	// how soon a crashed collector's messages come back. Default 30s, at
	// least 1s.
	AckWait time.Duration
	// RetryMin and RetryMax bound the backoff after a transient failure,
	// before a sink's Retry-After is applied. Defaults 1s and 1m.
	RetryMin, RetryMax time.Duration
}

// Filter selects events by what their subject says
// (sandtrail.events.<class_uid>.<severity_id>.<host>), so the server does
// the filtering and the sink's consumer never sees the rest. An empty
// field means "any".
type Filter struct {
	// Classes are OCSF class_uids sandtrail knows (2003, 2004...).
	Classes []int
	// MinSeverity keeps severity_id >= MinSeverity (1 Informational to 6
	// Fatal), and 99 Other, whose rank is unknown. 0: every severity.
	MinSeverity int
	// Hosts are device host names, matched as subject tokens
	// (bus.Token: case-insensitive, '.' read as '_').
	Hosts []string
}

// String describes the filter for logs and the lifecycle events.
func (f Filter) String() string {
	var parts []string
	if len(f.Classes) > 0 {
		s := make([]string, len(f.Classes))
		for i, c := range f.Classes {
			s[i] = strconv.Itoa(c)
		}
		parts = append(parts, "classes "+strings.Join(s, ","))
	}
	if f.MinSeverity > 0 {
		parts = append(parts, "severity >= "+strconv.Itoa(f.MinSeverity))
	}
	if len(f.Hosts) > 0 {
		parts = append(parts, "hosts "+strings.Join(f.Hosts, ","))
	}
	if len(parts) == 0 {
		return "all events"
	}
	return strings.Join(parts, "; ")
}

// Subjects returns the consumer filter subjects the filter stands for
// (bus.EventFilter: sorted, never overlapping); it also refuses a class
// sandtrail does not emit.
func (f Filter) Subjects() ([]string, error) {
	for _, c := range f.Classes {
		if _, ok := schema.Class(c); !ok {
			return nil, fmt.Errorf("class %d is not a sandtrail class", c)
		}
	}
	return bus.EventFilter(f).Subjects()
}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c Config) withDefaults() (Config, error) {
	if c.JetStream == nil {
		return c, errors.New("collector: JetStream is required")
	}
	if len(c.Sinks) == 0 {
		return c, errors.New("collector: no sinks")
	}
	if c.Stream == "" {
		c.Stream = bus.EventsStream
	}
	if c.DLQStream == "" {
		c.DLQStream = bus.DLQStream
	}
	if c.Validator == nil {
		c.Validator = &schema.Validator{}
	}
	switch {
	case c.RawDataMax == 0:
		c.RawDataMax = DefaultRawDataMax
	case c.RawDataMax < 0 || c.RawDataMax > MaxRawDataMax:
		return c, fmt.Errorf("collector: RawDataMax %d: want 1 to %d", c.RawDataMax, MaxRawDataMax)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"MaxFailing", &c.MaxFailing, DefaultMaxFailing},
		{"DrainTimeout", &c.DrainTimeout, DefaultDrainTimeout},
		{"LagInterval", &c.LagInterval, DefaultLagInterval},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("collector: negative %s %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.ProductVersion == "" {
		c.ProductVersion = "devel"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	sinks := make([]SinkConfig, len(c.Sinks))
	seen := map[string]bool{}
	for i, s := range c.Sinks {
		s, err := s.withDefaults()
		if err != nil {
			return c, fmt.Errorf("collector: sink %d (%s): %w", i+1, s.Name, err)
		}
		if seen[s.Name] {
			return c, fmt.Errorf("collector: two sinks named %s", s.Name)
		}
		seen[s.Name] = true
		sinks[i] = s
	}
	c.Sinks = sinks
	return c, nil
}

func (s SinkConfig) withDefaults() (SinkConfig, error) {
	if !sinkName.MatchString(s.Name) {
		return s, fmt.Errorf("name %q: want 1 to 64 letters, digits, '-' or '_'", s.Name)
	}
	if s.Sink == nil {
		return s, errors.New("no Sink")
	}
	if _, err := s.Filter.Subjects(); err != nil {
		return s, fmt.Errorf("filter: %w", err)
	}
	type dur struct {
		name string
		v    *time.Duration
		def  time.Duration
	}
	for _, d := range []dur{
		{"MaxWait", &s.MaxWait, DefaultMaxWait},
		{"AckWait", &s.AckWait, DefaultAckWait},
		{"RetryMin", &s.RetryMin, DefaultRetryMin},
		{"RetryMax", &s.RetryMax, max(DefaultRetryMax, s.RetryMin)},
	} {
		if *d.v < 0 {
			return s, fmt.Errorf("negative %s %s", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch {
	case s.MaxEvents == 0:
		s.MaxEvents = DefaultMaxEvents
	case s.MaxEvents < 0 || s.MaxEvents > 10000:
		return s, fmt.Errorf("MaxEvents %d: want 1 to 10000", s.MaxEvents)
	}
	switch {
	case s.MaxDeliver == 0:
		s.MaxDeliver = DefaultMaxDeliver
	case s.MaxDeliver < 2:
		return s, fmt.Errorf("MaxDeliver %d: want at least 2 (the last delivery is the dead letter)", s.MaxDeliver)
	}
	if s.AckWait < time.Second {
		return s, fmt.Errorf("AckWait %s: want at least 1s", s.AckWait)
	}
	if s.MaxWait > s.AckWait/3 {
		return s, fmt.Errorf("MaxWait %s: want at most AckWait/3 (%s)", s.MaxWait, s.AckWait/3)
	}
	if s.RetryMax < s.RetryMin {
		return s, fmt.Errorf("RetryMax %s is below RetryMin %s", s.RetryMax, s.RetryMin)
	}
	return s, nil
}

// consumerConfig is the durable pull consumer of a defaulted sink.
func (s SinkConfig) consumerConfig() jetstream.ConsumerConfig {
	subjects, _ := s.Filter.Subjects() // checked by withDefaults
	return jetstream.ConsumerConfig{
		Durable:        ConsumerPrefix + s.Name,
		Description:    "sandtrail collector sink " + s.Name + " (" + s.Filter.String() + ")",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.AckWait,
		MaxDeliver:     s.MaxDeliver,
		FilterSubjects: subjects,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
		// Four batches are out at once: one being written, one
		// validated and waiting, two buffered by the pull iterator; the
		// rest of the room is for events naked with a delay.
		MaxAckPending: 16 * s.MaxEvents,
	}
}
