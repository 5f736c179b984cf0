package collector

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Instrumented is implemented by sinks that export metrics of their own
// (the alert sink's suppressed alerts, an HTTP sink's status codes). The
// collector registers them once, in New, in its registry with the label
// sink=<name> added; metric names should start with sandtrail_sink_.
type Instrumented interface {
	Collectors() []prometheus.Collector
}

// metrics are the collector's Prometheus metrics, all labelled by sink.
type metrics struct {
	received     *prometheus.CounterVec
	validated    *prometheus.CounterVec
	exported     *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deferred     *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	ackErrors    *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	batchSize    *prometheus.HistogramVec
	pending      *prometheus.GaugeVec
	ackPending   *prometheus.GaugeVec
	lifecycle    prometheus.Counter
}

func newMetrics() *metrics {
	const ns, sub = "sandtrail", "collector"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, []string{"sink"})
	}
	return &metrics{
		received:     counter("events_received_total", "Messages read from the events stream, redeliveries included.", "sink"),
		validated:    counter("events_validated_total", "Messages that passed the schema validator.", "sink"),
		exported:     counter("events_exported_total", "Events the sink confirmed (then acknowledged).", "sink"),
		retried:      counter("events_retried_total", "Events the sink could not take yet, held or redelivered later.", "sink"),
		deferred:     counter("events_deferred_total", "Events the sink asked to take later by design (the alert sink gathering a run), redelivered later.", "sink"),
		deadLettered: counter("events_dead_lettered_total", "Messages sent to the dead-letter stream, by reason.", "sink", "reason"),
		ackErrors:    counter("ack_errors_total", "Acknowledgements that could not be sent (the message will be redelivered).", "sink"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "export_duration_seconds",
			Help:    "Time a sink's Write took, per batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5ms to 65s
		}, []string{"sink"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "batch_events",
			Help:    "Events per batch handed to a sink.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 to 8192
		}, []string{"sink"}),
		pending:    gauge("consumer_pending_events", "Consumer lag: events in the stream the sink's consumer has not been delivered yet."),
		ackPending: gauge("consumer_ack_pending_events", "Events delivered to the sink's consumer and not yet acknowledged."),
		lifecycle: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "lifecycle_publish_errors_total",
			Help: "Lifecycle events of the collector that could not be published.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.received, m.validated, m.exported, m.retried, m.deferred, m.deadLettered,
		m.ackErrors, m.latency, m.batchSize, m.pending, m.ackPending, m.lifecycle}
}

// register registers the collector's metrics and every Instrumented sink's.
// On error nothing stays registered.
func (c *Collector) register() error {
	reg := c.cfg.Registry
	var done []func()
	undo := func() {
		for _, f := range done {
			f()
		}
	}
	add := func(r prometheus.Registerer, col prometheus.Collector) error {
		if err := r.Register(col); err != nil {
			undo()
			return err
		}
		done = append(done, func() { r.Unregister(col) })
		return nil
	}
	for _, col := range c.m.collectors() {
		if err := add(reg, col); err != nil {
			return fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	for _, s := range c.sinks {
		// Children exist from the start, so a scrape shows every sink at 0.
		s.m.init(c.m, s.cfg.Name)
		r := prometheus.WrapRegistererWith(prometheus.Labels{"sink": s.cfg.Name}, reg)
		failing := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "sandtrail", Subsystem: "collector", Name: "sink_failing_seconds",
			Help: "How long the sink has been failing (0 when it works).",
		}, func() float64 { return s.state(c.cfg.Now()).For.Seconds() })
		if err := add(r, failing); err != nil {
			return fmt.Errorf("collector: sink %s: register metrics: %w", s.cfg.Name, err)
		}
		in, ok := s.cfg.Sink.(Instrumented)
		if !ok {
			continue
		}
		for _, col := range in.Collectors() {
			if err := add(r, col); err != nil {
				return fmt.Errorf("collector: sink %s: register metrics: %w", s.cfg.Name, err)
			}
		}
	}
	c.unregister = undo
	return nil
}

// sinkMetrics are the children of one sink, resolved once.
type sinkMetrics struct {
	received, validated, exported, retried, deferred, ackErrors prometheus.Counter
	latency, batchSize                                          prometheus.Observer
	pending, ackPending                                         prometheus.Gauge
	deadLettered                                                *prometheus.CounterVec
	name                                                        string
}

func (s *sinkMetrics) init(m *metrics, name string) {
	s.name = name
	s.received = m.received.WithLabelValues(name)
	s.validated = m.validated.WithLabelValues(name)
	s.exported = m.exported.WithLabelValues(name)
	s.retried = m.retried.WithLabelValues(name)
	s.deferred = m.deferred.WithLabelValues(name)
	s.ackErrors = m.ackErrors.WithLabelValues(name)
	s.latency = m.latency.WithLabelValues(name)
	s.batchSize = m.batchSize.WithLabelValues(name)
	s.pending = m.pending.WithLabelValues(name)
	s.ackPending = m.ackPending.WithLabelValues(name)
	s.deadLettered = m.deadLettered
	for _, r := range reasons {
		m.deadLettered.WithLabelValues(name, string(r))
	}
}

func (s *sinkMetrics) dead(r reason) { s.deadLettered.WithLabelValues(s.name, string(r)).Inc() }

// Registry returns the registry the collector's metrics are in: the one
// given in Config, or the one New made.
func (c *Collector) Registry() *prometheus.Registry { return c.cfg.Registry }

// Handler serves /metrics (the registry, in the Prometheus text format)
// and /healthz (200 "ok" and one line per sink, or 503 naming the sinks
// failing for longer than MaxFailing).
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", c.serveHealth)
	return mux
}

func (c *Collector) serveHealth(w http.ResponseWriter, _ *http.Request) {
	states := c.SinkStates()
	err := c.Health()
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "unhealthy: %v\n", err)
	} else {
		b.WriteString("ok\n")
	}
	for _, s := range states {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(b.String()))
}

// SinkState is the health of one sink.
type SinkState struct {
	Name string
	// FailingSince is when the sink's current run of failures began (a
	// whole batch refused, the consumer unreachable, a dead letter that
	// could not be published); zero when it works.
	FailingSince time.Time
	// For is how long it has been failing, at the time of the snapshot.
	For time.Duration
	// Err is the last failure.
	Err string
}

func (s SinkState) String() string {
	if s.FailingSince.IsZero() {
		return "sink " + s.Name + ": ok"
	}
	return fmt.Sprintf("sink %s: failing for %s: %s", s.Name, s.For.Round(time.Second), s.Err)
}
