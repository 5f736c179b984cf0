package alert_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

// alerting makes every event of the suite an alerting one: the suite's
// events are Compliance Findings that pass, which this sink acknowledges
// without sending anything; with is_alert true each must reach the
// receiver inside an alert, and Read can check that it did.
type alerting struct{ s *alert.Sink }

func (a alerting) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	evs := make([]collector.Event, len(batch))
	for i, ev := range batch {
		ev.Data = bytes.Replace(ev.Data, []byte(`"is_alert":false`), []byte(`"is_alert":true`), 1)
		evs[i] = ev
	}
	return a.s.Write(ctx, evs)
}

func (a alerting) Close(ctx context.Context) error { return a.s.Close(ctx) }

// TestConformance runs the sink conformance suite against the httptest
// webhook: no alert receiver of ours runs here, and the webhook is ours to
// define. Every batch of the suite is one run; the window is off (Window
// -1) because the suite expects Delivered without a posture event, and
// the rate limit is out of the way.
func TestConformance(t *testing.T) {
	hook := newWebhook(t)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) collector.Sink {
			s, err := alert.New(alert.Config{URL: hook.URL, Window: -1, Burst: 1 << 20, RatePerMinute: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return alerting{s}
		},
		Read: func(t *testing.T) []sinktest.Received {
			var out []sinktest.Received
			for _, a := range hook.alerts(t) {
				for _, f := range a.Findings {
					out = append(out, sinktest.Received{UID: f.EventUID})
				}
			}
			return out
		},
		Break:   func(*testing.T) { hook.status.Store(http.StatusServiceUnavailable) },
		Restore: func(*testing.T) { hook.status.Store(http.StatusOK) },
		Settle:  time.Second,
	})
}
