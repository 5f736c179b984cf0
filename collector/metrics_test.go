package collector_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

// alertSink stands for a sink with metrics of its own.
type alertSink struct {
	memSink
	suppressed prometheus.Counter
}

func (a *alertSink) Collectors() []prometheus.Collector { return []prometheus.Collector{a.suppressed} }

var _ collector.Instrumented = (*alertSink)(nil)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample returns the value of one sample line of the text format.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sample %s in /metrics:\n%s", series, body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsAndHealth(t *testing.T) {
	e := startEnv(t, 0)
	var down atomic.Bool
	down.Store(true)
	bad := &memSink{fail: func(collector.Event) collector.Outcome {
		if down.Load() {
			return collector.Outcome{Status: collector.Retry, Reason: "503 Service Unavailable"}
		}
		return collector.Outcome{}
	}}
	good := &memSink{}
	alert := &alertSink{suppressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sandtrail_sink_suppressed_alerts_total", Help: "Alerts not sent."})}
	alert.suppressed.Add(3)
	c, _ := newCollector(t, e, collector.Config{
		MaxFailing: 300 * time.Millisecond,
		Sinks: []collector.SinkConfig{
			{Name: "good", Sink: good, Filter: only2003},
			{Name: "bad", Sink: bad, Filter: only2003},
			{Name: "alert", Sink: alert, Filter: collector.Filter{Classes: []int{2004}}},
		},
	})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	e.publish(t, sinktest.Events(5))
	e.publishRaw(t, bus.EventSubject(2003, 1, "h"), []byte("{not json"))
	waitFor(t, 10*time.Second, "the good sink", func() bool { return len(good.events()) == 5 })
	waitFor(t, 10*time.Second, "the bad sink to be unhealthy", func() bool { return c.Health() != nil })

	_, body := get(t, srv.URL+"/metrics")
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`sandtrail_collector_events_received_total{sink="good"}`, 6},
		{`sandtrail_collector_events_validated_total{sink="good"}`, 5},
		{`sandtrail_collector_events_exported_total{sink="good"}`, 5},
		{`sandtrail_collector_events_dead_lettered_total{reason="syntax",sink="good"}`, 1},
		{`sandtrail_collector_events_dead_lettered_total{reason="rejected",sink="good"}`, 0},
		{`sandtrail_collector_events_exported_total{sink="bad"}`, 0},
		{`sandtrail_collector_sink_failing_seconds{sink="good"}`, 0},
		{`sandtrail_sink_suppressed_alerts_total{sink="alert"}`, 3},
	} {
		if got := sample(t, body, tc.series); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
		}
	}
	for _, series := range []string{
		`sandtrail_collector_events_retried_total{sink="bad"}`,
		`sandtrail_collector_sink_failing_seconds{sink="bad"}`,
		`sandtrail_collector_export_duration_seconds_count{sink="good"}`,
	} {
		if got := sample(t, body, series); got <= 0 {
			t.Errorf("%s = %v, want > 0", series, got)
		}
	}
	for _, name := range []string{"sandtrail_collector_consumer_pending_events", "sandtrail_collector_consumer_ack_pending_events", "sandtrail_collector_batch_events_bucket"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if mfs, _ := prometheus.DefaultGatherer.Gather(); len(mfs) > 0 {
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "sandtrail_") {
				t.Errorf("%s is in the global registry", mf.GetName())
			}
		}
	}

	code, body := get(t, srv.URL+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "sink bad: failing for") ||
		!strings.Contains(body, "503 Service Unavailable") || !strings.Contains(body, "sink good: ok") {
		t.Errorf("/healthz with a sink failing: %d\n%s", code, body)
	}
	down.Store(false)
	waitFor(t, 10*time.Second, "recovery", func() bool { return len(bad.events()) == 5 })
	code, body = get(t, srv.URL+"/healthz")
	if code != http.StatusOK || !strings.HasPrefix(body, "ok\n") {
		t.Errorf("/healthz after recovery: %d\n%s", code, body)
	}
}

// A collector that is closed unregisters its metrics, so a new one can
// use the same registry.
func TestRegistryReuse(t *testing.T) {
	e := startEnv(t, 0)
	reg := prometheus.NewRegistry()
	for range 2 {
		c, err := collector.New(collector.Config{JetStream: e.js, Registry: reg, Sinks: []collector.SinkConfig{{Name: "m", Sink: &memSink{}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
