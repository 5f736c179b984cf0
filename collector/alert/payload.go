package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// PayloadVersion is the version of the webhook document.
const PayloadVersion = "1"

// Payload is the JSON document POSTed in webhook mode.
type Payload struct {
	Version string  `json:"version"` // PayloadVersion
	Alerts  []Alert `json:"alerts"`
	// SuppressedSinceLast counts the alerts the rate limit dropped since the
	// previous successful POST; SuppressedTotal since the sink started.
	SuppressedSinceLast uint64 `json:"suppressed_since_last"`
	SuppressedTotal     uint64 `json:"suppressed_total"`
}

// amAlert is a postableAlert of Alertmanager's API v2 (POST
// /api/v2/alerts takes a JSON array of them).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanager turns alerts into Alertmanager's form: labels alertname,
// run, host, policy and severity (empty ones left out) plus Config.Labels;
// annotations summary, description, remediation, controls, event_uids and,
// when the rate limit dropped alerts, suppressed_alerts.
func alertmanager(alerts []Alert, sinceLast, total uint64) []amAlert {
	out := make([]amAlert, len(alerts))
	for i, a := range alerts {
		labels := map[string]string{}
		for k, v := range a.Labels {
			labels[k] = v
		}
		for k, v := range map[string]string{"alertname": a.Name, "run": a.Run, "host": a.Host, "policy": a.Policy, "severity": a.Severity} {
			if v != "" {
				labels[k] = v
			}
		}
		if a.Run == "" {
			labels["event"] = strings.TrimPrefix(a.Key, "event:")
		}
		ann := map[string]string{"summary": a.Summary, "description": a.Description}
		if a.Remediation != "" {
			ann["remediation"] = a.Remediation
		}
		var names, uids []string
		for _, c := range a.Controls {
			names = append(names, c.Name+"="+c.Status)
		}
		for _, f := range a.Findings {
			uids = append(uids, f.EventUID)
		}
		if len(names) > 0 {
			ann["controls"] = strings.Join(names, ", ")
		}
		ann["event_uids"] = strings.Join(uids, ", ")
		if sinceLast > 0 {
			ann["suppressed_alerts"] = fmt.Sprintf("%d alerts suppressed by sandtrail's rate limit since the last one sent (%d in total)", sinceLast, total)
		}
		out[i] = amAlert{Labels: labels, Annotations: ann, StartsAt: a.StartsAt, GeneratorURL: a.URL}
	}
	return out
}

// body encodes the request body for the sink's mode.
func (s *Sink) body(alerts []Alert, sinceLast, total uint64) ([]byte, error) {
	if s.cfg.Mode == ModeAlertmanager {
		return json.Marshal(alertmanager(alerts, sinceLast, total))
	}
	return json.Marshal(Payload{Version: PayloadVersion, Alerts: alerts, SuppressedSinceLast: sinceLast, SuppressedTotal: total})
}

// postError is a failed POST: every cause is worth a retry.
type postError struct {
	reason string
	after  time.Duration // the receiver's Retry-After
}

func (e *postError) Error() string { return e.reason }

// post sends body and returns nil on a 2xx answer.
func (s *Sink) post(ctx context.Context, body []byte) *postError {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return &postError{reason: "alert: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sandtrail-collector")
	if s.token != "" {
		req.Header.Set("Authorization", s.token.Header("Bearer"))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &postError{reason: fmt.Sprintf("alert: POST %s: %v", s.endpoint, err)}
	}
	msg, _ := transport.ReadBody(resp, 512)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := &postError{reason: fmt.Sprintf("alert: POST %s: %s: %s", s.endpoint, resp.Status, strings.TrimSpace(string(msg)))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		e.after = transport.RetryAfter(resp.Header, s.cfg.Now())
	default:
		// A 4xx other than 429 will not pass without a change at the
		// receiver; the events stay Retry, so they reach the dead-letter
		// stream after MaxDeliver attempts instead of being dropped.
		e.reason += " (the receiver refuses the request; fix its configuration)"
	}
	return e
}
