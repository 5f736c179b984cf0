package alert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
)

const run = "019ac617-3100-7000-80a1-3c9efa1d7f42"

// TestOneAlertPerRun: a degraded launch's twelve events make exactly one
// alert naming both degraded controls with their reasons and remediation,
// whether they arrive in one batch or split over three.
func TestOneAlertPerRun(t *testing.T) {
	for _, split := range []int{12, 4} {
		t.Run(map[int]string{12: "one batch", 4: "three batches"}[split], func(t *testing.T) {
			hook := newWebhook(t)
			clk := newClock()
			s := newSink(t, alert.Config{URL: hook.URL, Now: clk.Now})
			evs := degradedRun(t, run)
			var held []collector.Event
			for i := 0; i < len(evs); i += split {
				batch := evs[i : i+split]
				for j, o := range s.Write(t.Context(), batch) {
					switch o.Status {
					case collector.Defer:
						if o.RetryAfter <= 0 || o.RetryAfter > 2*time.Second || !strings.Contains(o.Reason, "held") {
							t.Fatalf("held event: RetryAfter %s, reason %q", o.RetryAfter, o.Reason)
						}
						held = append(held, batch[j])
					case collector.Reject:
						t.Fatalf("event %d rejected: %s", i+j, o.Reason)
					}
				}
				clk.Advance(100 * time.Millisecond)
			}
			if split == 4 && len(held) != 4 {
				t.Fatalf("held %d events of the first two batches, want the 4 alerting ones", len(held))
			}
			if len(held) > 0 { // the held events come back: the run's alert covers them
				wantAll(t, s.Write(t.Context(), held), collector.Delivered)
			}
			alerts := hook.alerts(t)
			if len(alerts) != 1 {
				t.Fatalf("got %d alerts, want 1: %+v", len(alerts), alerts)
			}
			a := alerts[0]
			if a.Name != "SandboxDegraded" || a.Run != run || a.Host != "build-07.ci.example.net" ||
				a.Policy != "build-runner" || a.Severity != "high" || a.LaunchRefused || a.Update {
				t.Errorf("alert: %+v", a)
			}
			var names []string
			for _, c := range a.Controls {
				names = append(names, c.Name+"="+c.Status+"/"+c.Code)
				if c.Reason == "" || c.Remediation == "" {
					t.Errorf("control %s without reason or remediation: %+v", c.Name, c)
				}
			}
			if diff := cmp.Diff([]string{"capability_bounding_set=Warning/EPERM", "seccomp=Warning/ENOSYS"}, names); diff != "" {
				t.Errorf("controls (-want +got):\n%s", diff)
			}
			if len(a.Findings) != 5 {
				t.Errorf("got %d findings, want 5 (2 compliance, 2 detection, the posture)", len(a.Findings))
			}
			if a.Posture == nil || a.Posture.SecurityLevel != "At Risk" || a.Posture.RiskScore == nil || *a.Posture.RiskScore != 35 {
				t.Errorf("posture: %+v", a.Posture)
			}
			for _, want := range []string{"capability_bounding_set (EPERM)", "seccomp (ENOSYS)"} {
				if !strings.Contains(a.Summary, want) {
					t.Errorf("summary %q lacks %q", a.Summary, want)
				}
			}
			if !strings.Contains(a.Remediation, "CAP_SETPCAP") || !strings.Contains(a.Remediation, "CONFIG_SECCOMP_FILTER") {
				t.Errorf("remediation: %q", a.Remediation)
			}
			if s.Sent() != 1 || s.Suppressed() != 0 {
				t.Errorf("sent %d suppressed %d, want 1 and 0", s.Sent(), s.Suppressed())
			}
		})
	}
}

// TestWindowExpires: a run whose posture never comes is alerted once the
// window passed; a posture arriving later adds nothing and sends nothing,
// a new degraded control sends an update.
func TestWindowExpires(t *testing.T) {
	hook := newWebhook(t)
	clk := newClock()
	s := newSink(t, alert.Config{URL: hook.URL, Now: clk.Now})
	evs := degradedRun(t, run)
	first := []collector.Event{evs[0], evs[1]} // capability_bounding_set only
	wantAll(t, s.Write(t.Context(), first), collector.Defer)
	clk.Advance(1999 * time.Millisecond)
	wantAll(t, s.Write(t.Context(), first), collector.Defer) // came back early: still held
	clk.Advance(time.Millisecond)
	wantAll(t, s.Write(t.Context(), first), collector.Delivered)
	if n := len(hook.alerts(t)); n != 1 {
		t.Fatalf("after the window: %d alerts, want 1", n)
	}
	wantAll(t, s.Write(t.Context(), []collector.Event{evs[11]}), collector.Delivered) // the posture: no news
	if n := len(hook.alerts(t)); n != 1 {
		t.Fatalf("after the late posture: %d alerts, want still 1", n)
	}
	wantAll(t, s.Write(t.Context(), evs[5:7]), collector.Delivered) // seccomp degraded: news
	alerts := hook.alerts(t)
	if len(alerts) != 2 || !alerts[1].Update || alerts[1].Key != alerts[0].Key || len(alerts[1].Controls) != 2 {
		t.Fatalf("after a new degraded control: want an update naming both controls, got %+v", alerts)
	}
}

func TestRefusedLaunch(t *testing.T) {
	hook := newWebhook(t)
	s := newSink(t, alert.Config{URL: hook.URL})
	wantAll(t, s.Write(t.Context(), refusedRun(t, "run-refused")), collector.Delivered)
	alerts := hook.alerts(t)
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	if a.Name != "SandboxRefused" || !a.LaunchRefused || len(a.Controls) != 1 || a.Controls[0].Status != "Fail" ||
		!strings.Contains(a.Remediation, "lsm=") || !strings.Contains(a.Description, "launch refused") {
		t.Fatalf("alert: %+v", a)
	}
}

// TestRateLimit: 1,000 degraded launches within a minute make a bounded
// number of alerts; the rest are counted as suppressed, visible in
// Suppressed, in the metrics and in the alerts that are sent.
func TestRateLimit(t *testing.T) {
	hook := newWebhook(t)
	clk := newClock()
	s := newSink(t, alert.Config{URL: hook.URL, Now: clk.Now}) // defaults: burst 10, 10 per minute
	const launches = 1000
	all := degradedRun(t, run)
	template := []collector.Event{all[0], all[1], all[11]} // a degradation and the posture: the alerting part
	for i := range launches {
		id := fmt.Sprintf("019ac617-3100-7000-80a1-%012d", i)
		evs := make([]collector.Event, len(template))
		for j, ev := range template {
			ev.UID = strings.ReplaceAll(ev.UID, run, id)
			ev.RunID = id
			ev.Data = bytes.ReplaceAll(ev.Data, []byte(run), []byte(id))
			evs[j] = ev
		}
		wantAll(t, s.Write(t.Context(), evs), collector.Delivered)
		clk.Advance(time.Minute / launches)
	}
	sent, suppressed := s.Sent(), s.Suppressed()
	// The bucket starts full (10) and refills 10 in the minute.
	if sent < 19 || sent > 21 {
		t.Fatalf("sent %d alerts for %d launches in a minute, want about 20", sent, launches)
	}
	if sent+suppressed != launches {
		t.Fatalf("sent %d + suppressed %d != %d launches", sent, suppressed, launches)
	}
	payloads := hook.payloads(t)
	var reported uint64
	for _, p := range payloads {
		reported += p.SuppressedSinceLast
	}
	last := payloads[len(payloads)-1]
	if last.SuppressedTotal != reported || reported > suppressed {
		t.Fatalf("payloads report %d suppressed (last total %d), sink counted %d", reported, last.SuppressedTotal, suppressed)
	}
	t.Logf("%d launches: %d alerts sent, %d suppressed (%d of them reported by the alerts sent)", launches, sent, suppressed, reported)

	reg := prometheus.NewRegistry()
	for _, c := range s.Collectors() {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	want := map[string]float64{"sandtrail_sink_alerts_sent_total": float64(sent),
		"sandtrail_sink_alerts_suppressed_total": float64(suppressed), "sandtrail_sink_alert_runs_gathering": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("metrics (-want +got):\n%s", diff)
	}
}

// TestRetry: a 5xx or 429 (with Retry-After) or a network error makes the
// alert's events Retry, without using the rate limit's budget; any other
// refusal is Retry too (the dead-letter stream takes them after
// MaxDeliver), never Reject.
func TestRetry(t *testing.T) {
	hook := newWebhook(t)
	hook.header.Set("Retry-After", "7")
	s := newSink(t, alert.Config{URL: hook.URL, Burst: 1, RatePerMinute: 1})
	evs := refusedRun(t, "run-retry")
	for _, tc := range []struct {
		code   int
		reason string
		after  time.Duration
	}{
		{http.StatusServiceUnavailable, "503", 7 * time.Second},
		{http.StatusTooManyRequests, "429", 7 * time.Second},
		{http.StatusBadRequest, "refuses the request", 0},
		{http.StatusUnauthorized, "401", 0},
	} {
		hook.status.Store(int32(tc.code))
		for i, o := range s.Write(t.Context(), evs) {
			if o.Status != collector.Retry || !strings.Contains(o.Reason, tc.reason) || o.RetryAfter != tc.after {
				t.Fatalf("HTTP %d: event %d: got %s (%q, after %s), want retry (%q, after %s)", tc.code, i, o.Status, o.Reason, o.RetryAfter, tc.reason, tc.after)
			}
		}
	}
	hook.status.Store(http.StatusOK)
	wantAll(t, s.Write(t.Context(), evs), collector.Delivered) // the one token is still there
	if s.Sent() != 1 || s.Suppressed() != 0 {
		t.Fatalf("sent %d suppressed %d, want 1 and 0", s.Sent(), s.Suppressed())
	}

	hook.Close() // network error
	down := newSink(t, alert.Config{URL: hook.URL})
	for i, o := range down.Write(t.Context(), refusedRun(t, "run-down")) {
		if o.Status != collector.Retry || !strings.Contains(o.Reason, "POST") {
			t.Fatalf("receiver down: event %d: got %s (%q), want retry", i, o.Status, o.Reason)
		}
	}
}

// TestNonAlertingEvents are acknowledged at once, without a request.
func TestNonAlertingEvents(t *testing.T) {
	hook := newWebhook(t)
	s := newSink(t, alert.Config{URL: hook.URL})
	paths, _ := filepath.Glob("../../testdata/events/valid/*/*.json")
	var evs []collector.Event
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "../../testdata/events/valid/"), ".json")
		if slices.Contains([]string{"compliance_finding/capbset-warning", "compliance_finding/landlock-fail",
			"device_config_state_change/posture-at-risk", "device_config_state_change/posture-protection-off",
			"process_activity/launch-failure"}, name) || strings.HasPrefix(name, "detection_finding/") {
			continue // these alert
		}
		r := "run-quiet"
		if name == "device_config_state_change/host-probe" {
			r = "" // the host probe belongs to no run, and does not alert
		}
		evs = append(evs, fixture(t, name, r, len(evs), nil))
	}
	wantAll(t, s.Write(t.Context(), evs), collector.Delivered)
	if n := len(hook.payloads(t)); n != 0 {
		t.Fatalf("%d non-alerting events made %d requests", len(evs), n)
	}
}

// TestEventWithoutRun alerts at once: there is nothing to gather.
func TestEventWithoutRun(t *testing.T) {
	hook := newWebhook(t)
	s := newSink(t, alert.Config{URL: hook.URL, Labels: map[string]string{"cluster": "ci"}, GeneratorURL: "https://grafana.example/d/x?run="})
	ev := fixture(t, "detection_finding/seccomp-denied-alert", "", 1, nil)
	wantAll(t, s.Write(t.Context(), []collector.Event{ev}), collector.Delivered)
	alerts := hook.alerts(t)
	if len(alerts) != 1 || alerts[0].Name != "SandtrailAlert" || alerts[0].Key != "event:"+ev.UID || alerts[0].Labels["cluster"] != "ci" {
		t.Fatalf("alerts: %+v", alerts)
	}
}

// TestCancelAndClose: Write gives up when its context ends; Close stops
// waiting for a Write at its own deadline and cancels its request; Close
// is idempotent and Write after it is Retry.
func TestCancelAndClose(t *testing.T) {
	hook := newWebhook(t)
	release := make(chan struct{})
	hook.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	s := newSink(t, alert.Config{URL: hook.URL})

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	wantAll(t, s.Write(ctx, refusedRun(t, "run-cancel")), collector.Retry)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Write took %s after a 200ms deadline", d)
	}

	done := make(chan []collector.Outcome)
	go func() { done <- s.Write(context.Background(), refusedRun(t, "run-close")) }()
	time.Sleep(200 * time.Millisecond)
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	if err := s.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close during a Write: got %v, want the deadline", err)
	}
	select {
	case outs := <-done:
		wantAll(t, outs, collector.Retry)
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after Close")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantAll(t, s.Write(context.Background(), refusedRun(t, "run-after")), collector.Retry)
}

func TestToken(t *testing.T) {
	hook := newWebhook(t)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := alert.Config{URL: hook.URL, TokenFile: file}
	s := newSink(t, cfg)
	wantAll(t, s.Write(t.Context(), refusedRun(t, "run-token")), collector.Delivered)
	if got := hook.auth; len(got) != 1 || got[0] != "Bearer s3cret" {
		t.Fatalf("Authorization: %q", got)
	}
	if str := cfg.String(); strings.Contains(str, "s3cret") || !strings.Contains(str, "token=file:"+file) {
		t.Fatalf("String: %s", str)
	}
	t.Setenv("SANDTRAIL_TEST_ALERT_TOKEN", "")
	if _, err := alert.New(alert.Config{URL: hook.URL, TokenEnv: "SANDTRAIL_TEST_ALERT_TOKEN", LookupEnv: os.LookupEnv}); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("New with an empty token variable: got %v, want it to say the variable is empty", err)
	}
	// Without a lookup the sink reads no environment: only the program
	// decides to (cmd/sandtrail hands it os.LookupEnv).
	if _, err := alert.New(alert.Config{URL: hook.URL, TokenEnv: "HOME"}); err == nil || !strings.Contains(err.Error(), "no way to read the environment") {
		t.Fatalf("New with token_env and no LookupEnv: got %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  alert.Config
		want string
	}{
		{"no url", alert.Config{}, "url is required"},
		{"scheme", alert.Config{URL: "ftp://x"}, "scheme"},
		{"credentials", alert.Config{URL: "https://u:p@x"}, "credentials"},
		{"mode", alert.Config{URL: "http://x", Mode: "pagerduty"}, `mode "pagerduty"`},
		{"two tokens", alert.Config{URL: "http://x", TokenFile: "f", TokenEnv: "E"}, "at most one"},
		{"rate", alert.Config{URL: "http://x", RatePerMinute: -1}, "rate_per_minute"},
		{"label", alert.Config{URL: "http://x", Labels: map[string]string{"run": "x"}}, `labels: "run"`},
		{"label name", alert.Config{URL: "http://x", Labels: map[string]string{"a-b": "x"}}, `labels: "a-b"`},
		{"tls on http", alert.Config{URL: "http://x", TLS: alert.TLSConfig{CAFile: "ca"}}, "not https"},
		{"generator", alert.Config{URL: "http://x", GeneratorURL: "not a url"}, "generator_url"},
		{"token file", alert.Config{URL: "http://x", TokenFile: "/nonexistent"}, "token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alert.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%v): got %v, want an error with %q", tc.cfg, err, tc.want)
			}
		})
	}
}

// TestDecodeStrict: the collector's strict decoder reads the Config from
// YAML and refuses an inline token.
func TestDecodeStrict(t *testing.T) {
	doc := `
mode: alertmanager
url: http://alertmanager:9093
window: 5s
rate_per_minute: 30
labels: {cluster: ci}
`
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &node); err != nil {
		t.Fatal(err)
	}
	var cfg alert.Config
	if err := collector.DecodeStrict(&node, "collector.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	want := alert.Config{Mode: "alertmanager", URL: "http://alertmanager:9093", Window: 5 * time.Second,
		RatePerMinute: 30, Labels: map[string]string{"cluster": "ci"}}
	if diff := cmp.Diff(want, cfg, cmpopts.IgnoreFields(alert.Config{}, "Now")); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if err := yaml.Unmarshal([]byte("url: http://x\ntoken: abc\n"), &node); err != nil {
		t.Fatal(err)
	}
	err := collector.DecodeStrict(&node, "collector.yaml", &alert.Config{})
	if err == nil || !strings.Contains(err.Error(), "token_file or token_env") {
		t.Fatalf("inline token: got %v", err)
	}
}
