package alert

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

var (
	_ collector.Sink         = (*Sink)(nil)
	_ collector.Instrumented = (*Sink)(nil)
)

// remember is how long the sink remembers a run after its alert: its
// events coming back (held events, redeliveries) are acknowledged, and
// later events of the run update the alert only if they add something.
const remember = 10 * time.Minute

// Sink turns alerting events into grouped, rate-limited operator alerts.
// Write is called by one goroutine at a time (the collector's contract);
// Suppressed, Sent and the metrics are safe to read at any time; Close may
// be called concurrently with a Write and is idempotent.
type Sink struct {
	cfg      Config // with defaults
	endpoint string
	token    transport.Secret // empty: no Authorization
	client   *http.Client

	// writing is the write lock (a one-slot channel, so that Close can stop
	// waiting for it when its context ends). It guards the fields below.
	writing   chan struct{}
	groups    map[string]*group // runs being gathered
	alerted   map[string]*group // runs whose alert went out (or was suppressed), until forgotten
	forgetAt  []forget          // alerted in insertion (and expiry) order
	tokens    float64
	refilled  time.Time
	sinceLast uint64 // suppressed since the last successful POST

	closed     atomic.Bool
	mu         sync.Mutex // guards cancelPost
	cancelPost context.CancelFunc

	suppressed atomic.Uint64
	sent       atomic.Uint64
	held       atomic.Int64
}

type forget struct {
	key   string
	until time.Time
}

// New validates cfg, reads the token and certificate files and returns a
// Sink. It starts nothing.
func New(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	endpoint, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("alert: config: %w", err)
	}
	tok, err := readToken(cfg.TokenFile, cfg.TokenEnv, cfg.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("alert: config: %w", err)
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("alert: config: %w", err)
	}
	return &Sink{
		cfg:      cfg,
		endpoint: endpoint,
		token:    tok,
		client:   transport.NewClient(tlsCfg),
		writing:  make(chan struct{}, 1),
		groups:   map[string]*group{},
		alerted:  map[string]*group{},
		tokens:   float64(cfg.Burst),
		refilled: cfg.Now(),
	}, nil
}

// Suppressed returns how many alerts the rate limit dropped since New.
func (s *Sink) Suppressed() uint64 { return s.suppressed.Load() }

// Sent returns how many alerts the receiver accepted since New.
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// Collectors implements collector.Instrumented: the counters of sent and
// suppressed alerts and the gauge of runs being gathered.
func (s *Sink) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandtrail_sink_alerts_sent_total",
			Help: "Operator alerts the alert receiver accepted.",
		}, func() float64 { return float64(s.sent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandtrail_sink_alerts_suppressed_total",
			Help: "Operator alerts dropped by the rate limit (their events are still exported by the other sinks).",
		}, func() float64 { return float64(s.suppressed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sandtrail_sink_alert_runs_gathering",
			Help: "Runs whose alerting events are being gathered into one alert.",
		}, func() float64 { return float64(s.held.Load()) }),
	}
}

// Write returns one outcome per event:
//   - Delivered at once for an event that alerts on nothing, and for an
//     event an alert already covered (a redelivery);
//   - Defer with RetryAfter for an alerting event of a run still being
//     gathered (the event is held: it comes back after the window, and is
//     then covered by the run's alert; not a failure);
//   - for the events of the runs whose alert is due: Delivered when the
//     POST got a 2xx answer or when the rate limit suppressed the alert
//     (counted in Suppressed), Retry when the POST failed.
//
// Reject is only for bytes that are not JSON, which the collector's
// validator never lets through.
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	select {
	case s.writing <- struct{}{}:
		defer func() { <-s.writing }()
	case <-ctx.Done():
		return collector.RetryAll(len(batch), "alert: "+ctx.Err().Error(), 0)
	}
	if s.closed.Load() {
		return collector.RetryAll(len(batch), "alert: sink closed", 0)
	}
	now := s.cfg.Now()
	s.expire(now)
	out := make([]collector.Outcome, len(batch))
	touched := map[*group][]int{}
	var order []*group
	for i := range batch {
		ev := &batch[i]
		key := ev.RunID
		if key == "" {
			key = "event:" + ev.UID
		}
		if a := s.alerted[key]; a != nil {
			if _, ok := a.uids[ev.UID]; ok {
				continue // Delivered: the run's alert covered it
			}
		}
		v, err := classify(ev)
		if err != nil {
			out[i] = collector.Outcome{Status: collector.Reject, Reason: err.Error()}
			continue
		}
		if !v.trigger && !v.terminal {
			continue // Delivered: nothing to alert on
		}
		g := s.groups[key]
		if g == nil {
			if !v.trigger {
				continue // Delivered: the end of a run with nothing to alert on
			}
			if a := s.alerted[key]; a != nil {
				g = a.reopen(now)
			} else {
				g = newGroup(key, now)
			}
			if ev.RunID == "" || s.cfg.Window < 0 || len(s.groups) >= s.cfg.MaxRuns {
				g.complete = true // nothing to wait for, or no room to wait
			}
			s.groups[key] = g
		}
		g.add(ev.UID, v)
		if touched[g] == nil {
			order = append(order, g)
		}
		touched[g] = append(touched[g], i)
	}

	var send []*group
	for _, g := range order {
		if due := g.opened.Add(s.cfg.Window); !g.complete && now.Before(due) {
			wait := due.Sub(now)
			for _, i := range touched[g] {
				out[i] = collector.Outcome{Status: collector.Defer, RetryAfter: wait,
					Reason: fmt.Sprintf("alert: held up to %v while run %s's alerting events are gathered into one alert", wait.Round(time.Millisecond), g.key)}
			}
			continue
		}
		sig := g.signature()
		switch {
		case sig == g.sig:
			s.finish(g, sig, now) // Delivered: the run's alert already said all this
		case s.take(now):
			send = append(send, g)
		default:
			s.suppressed.Add(1)
			s.sinceLast++
			s.finish(g, sig, now) // Delivered: a deliberate, counted drop of the notification
		}
	}
	if len(send) > 0 {
		if err := s.send(ctx, send); err != nil {
			s.tokens = min(s.tokens+float64(len(send)), float64(s.cfg.Burst)) // unsent alerts do not use the budget
			for _, g := range send {
				for _, i := range touched[g] {
					out[i] = collector.Outcome{Status: collector.Retry, Reason: err.reason, RetryAfter: err.after}
				}
			}
		} else {
			for _, g := range send {
				s.finish(g, g.signature(), now)
			}
		}
	}
	s.held.Store(int64(len(s.groups)))
	return out
}

// send POSTs the alerts of the groups.
func (s *Sink) send(ctx context.Context, groups []*group) *postError {
	alerts := make([]Alert, len(groups))
	for i, g := range groups {
		alerts[i] = g.alert(s.cfg.GeneratorURL, s.cfg.Labels)
	}
	total := s.suppressed.Load()
	body, err := s.body(alerts, s.sinceLast, total)
	if err != nil {
		return &postError{reason: "alert: encode: " + err.Error()}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancelPost = cancel
	s.mu.Unlock()
	perr := s.post(ctx, body)
	s.mu.Lock()
	s.cancelPost = nil
	s.mu.Unlock()
	if perr != nil {
		return perr
	}
	s.sent.Add(uint64(len(groups)))
	s.sinceLast = 0
	return nil
}

// take takes a token from the bucket, refilled at RatePerMinute.
func (s *Sink) take(now time.Time) bool {
	if d := now.Sub(s.refilled); d > 0 {
		s.tokens = min(float64(s.cfg.Burst), s.tokens+d.Minutes()*float64(s.cfg.RatePerMinute))
		s.refilled = now
	}
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// finish ends a group's gathering: it is remembered as alerted.
func (s *Sink) finish(g *group, sig string, now time.Time) {
	delete(s.groups, g.key)
	g.sig = sig
	g.until = now.Add(remember)
	s.alerted[g.key] = g
	s.forgetAt = append(s.forgetAt, forget{g.key, g.until})
}

// expire forgets alerted runs past their time or beyond MaxRuns, and
// groups whose held events never came back (they were dead-lettered, or
// went to another collector).
func (s *Sink) expire(now time.Time) {
	n := 0
	for n < len(s.forgetAt) && (len(s.alerted) > s.cfg.MaxRuns || !now.Before(s.forgetAt[n].until)) {
		f := s.forgetAt[n]
		if g := s.alerted[f.key]; g != nil && g.until.Equal(f.until) {
			delete(s.alerted, f.key)
		}
		n++
	}
	if n > 0 {
		s.forgetAt = slices.Delete(s.forgetAt, 0, n)
	}
	for key, g := range s.groups {
		if now.Sub(g.opened) > remember+max(s.cfg.Window, 0) {
			delete(s.groups, key)
		}
	}
}

// Close drops what the sink gathers: the held events were not
// acknowledged, so the stream delivers them again to the next collector.
// A Write in progress is waited for until ctx ends; then its POST is
// cancelled (its events are Retry). Close is idempotent; Write after Close
// marks every event Retry.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	select {
	case s.writing <- struct{}{}:
		defer func() { <-s.writing }()
		s.groups, s.alerted, s.forgetAt = map[string]*group{}, map[string]*group{}, nil
		s.held.Store(0)
	case <-ctx.Done():
		s.mu.Lock()
		if s.cancelPost != nil {
			s.cancelPost()
		}
		s.mu.Unlock()
		err = fmt.Errorf("alert: close: a write was in progress: %w", ctx.Err())
	}
	s.client.CloseIdleConnections()
	return err
}
