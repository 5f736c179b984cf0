package alert_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
)

// postableAlert is Alertmanager API v2's postableAlert (api/v2/openapi.yaml):
// labels (required), annotations, startsAt, endsAt, generatorURL (uri).
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     *time.Time        `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// fakeAlertmanager stands in for Alertmanager, which does not run here: it
// serves POST /api/v2/alerts as the v2 API documents it, answering 400
// with a message for what Alertmanager would refuse (unknown fields, no
// labels, bad label names, a generatorURL that is not a URI) and 200
// otherwise.
type fakeAlertmanager struct {
	*httptest.Server
	mu     sync.Mutex
	alerts []postableAlert
}

func newFakeAlertmanager(t *testing.T) *fakeAlertmanager {
	am := &fakeAlertmanager{}
	am.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var alerts []postableAlert
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&alerts); err != nil {
			http.Error(w, fmt.Sprintf("%q", err.Error()), http.StatusBadRequest)
			return
		}
		for _, a := range alerts {
			if err := validate(a); err != nil {
				http.Error(w, fmt.Sprintf("%q", err.Error()), http.StatusBadRequest)
				return
			}
		}
		am.mu.Lock()
		am.alerts = append(am.alerts, alerts...)
		am.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(am.Close)
	return am
}

func validate(a postableAlert) error {
	if len(a.Labels) == 0 {
		return fmt.Errorf("at least one label pair required")
	}
	for k, v := range a.Labels {
		if !labelName.MatchString(k) || v == "" {
			return fmt.Errorf("invalid label %q=%q", k, v)
		}
	}
	for k := range a.Annotations {
		if !labelName.MatchString(k) {
			return fmt.Errorf("invalid annotation name %q", k)
		}
	}
	if a.GeneratorURL != "" {
		if _, err := url.ParseRequestURI(a.GeneratorURL); err != nil {
			return fmt.Errorf("generatorURL: %v", err)
		}
	}
	if a.StartsAt != nil && a.EndsAt != nil && a.EndsAt.Before(*a.StartsAt) {
		return fmt.Errorf("start time must be before end time")
	}
	return nil
}

func TestAlertmanager(t *testing.T) {
	am := newFakeAlertmanager(t)
	clk := newClock()
	s := newSink(t, alert.Config{Mode: alert.ModeAlertmanager, URL: am.URL, Now: clk.Now, Burst: 1,
		GeneratorURL: "https://grafana.example.net/d/sandtrail?var-run=", Labels: map[string]string{"cluster": "ci"}})
	wantAll(t, s.Write(t.Context(), degradedRun(t, run)), collector.Delivered)
	wantAll(t, s.Write(t.Context(), refusedRun(t, "run-2")), collector.Delivered) // bucket empty: suppressed
	clk.Advance(6 * time.Second)                                                  // one token back
	wantAll(t, s.Write(t.Context(), refusedRun(t, "run-3")), collector.Delivered)

	am.mu.Lock()
	defer am.mu.Unlock()
	if len(am.alerts) != 2 {
		t.Fatalf("Alertmanager got %d alerts, want 2 (one suppressed)", len(am.alerts))
	}
	a := am.alerts[0]
	want := map[string]string{"alertname": "SandboxDegraded", "run": run, "host": "build-07.ci.example.net",
		"policy": "build-runner", "severity": "high", "cluster": "ci"}
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, a.Labels[k], v)
		}
	}
	for _, k := range []string{"summary", "description", "remediation", "controls", "event_uids"} {
		if a.Annotations[k] == "" {
			t.Errorf("annotation %s is missing: %v", k, a.Annotations)
		}
	}
	if a.StartsAt == nil || a.StartsAt.UnixMilli() != 1764260000039 {
		t.Errorf("startsAt %v, want the first alerting event's time", a.StartsAt)
	}
	if a.GeneratorURL != "https://grafana.example.net/d/sandtrail?var-run="+run {
		t.Errorf("generatorURL %q", a.GeneratorURL)
	}
	b := am.alerts[1]
	if b.Labels["alertname"] != "SandboxRefused" || b.Labels["run"] != "run-3" ||
		!strings.Contains(b.Annotations["suppressed_alerts"], "1 alerts suppressed") {
		t.Errorf("second alert: %+v", b)
	}
}
