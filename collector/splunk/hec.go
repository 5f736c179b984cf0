package splunk

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// HEC status codes (the "code" of a response body) that this sink treats
// specially. Splunk documents them in "Troubleshoot HTTP Event Collector".
const (
	codeSuccess            = 0
	codeNoData             = 5
	codeInvalidDataFormat  = 6
	codeEventRequired      = 12
	codeEventBlank         = 13
	codeIndexedFieldsError = 15
)

// maxResponse bounds how much of a HEC response is read.
const maxResponse = 64 << 10

// write is the state of one Write.
type write struct {
	s       *Sink
	out     []collector.Outcome
	envs    [][]byte        // encoded envelopes, by batch index
	pending map[int64][]int // ackId -> batch indexes awaiting acknowledgement
}

// verdict classifies one HEC response.
type verdict uint8

const (
	accepted verdict = iota // 2xx, code 0
	badData                 // the request's data: isolate the bad events
	retry                   // everything else
)

// result is what one POST of envelopes came to.
type result struct {
	verdict verdict
	reason  string
	after   time.Duration // Retry-After
	ackID   int64
	hasAck  bool
	invalid int // HEC's invalid-event-number (0-based), or -1
}

// post sends the envelopes of idx and records their outcomes, isolating bad
// events on a data error.
func (w *write) post(ctx context.Context, idx []int) {
	r := w.send(ctx, idx)
	switch r.verdict {
	case accepted:
		if !w.s.cfg.Ack.Enabled {
			w.set(idx, collector.Outcome{Status: collector.Delivered})
			return
		}
		if !r.hasAck {
			w.set(idx, collector.Outcome{Status: collector.Retry, Reason: "splunk: ack.enabled is set but HEC returned no ackId: enable indexer acknowledgement on the token, or turn ack off; events kept for retry"})
			return
		}
		if w.pending == nil {
			w.pending = make(map[int64][]int)
		}
		w.pending[r.ackID] = idx
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: "splunk: awaiting indexer acknowledgement"})
	case badData:
		switch {
		case len(idx) == 1:
			w.set(idx, collector.Outcome{Status: collector.Reject, Reason: "splunk: HEC refused the event: " + r.reason})
		case r.invalid >= 0 && r.invalid < len(idx):
			// HEC named the first bad event: prove it alone, send the rest
			// together (events before it may be indexed twice).
			n := r.invalid
			w.post(ctx, idx[n:n+1])
			w.post(ctx, slices.Concat(idx[:n], idx[n+1:]))
		default:
			half := len(idx) / 2
			w.post(ctx, idx[:half])
			w.post(ctx, idx[half:])
		}
	default:
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: r.reason, RetryAfter: r.after})
	}
}

func (w *write) set(idx []int, o collector.Outcome) {
	for _, i := range idx {
		w.out[i] = o
	}
}

// send POSTs the envelopes of idx once.
func (w *write) send(ctx context.Context, idx []int) result {
	s := w.s
	if err := context.Cause(ctx); err != nil {
		return result{verdict: retry, reason: "splunk: " + err.Error(), invalid: -1}
	}
	var body bytes.Buffer
	var dst io.Writer = &body
	var zw *gzip.Writer
	if s.cfg.Compression == CompressionGzip {
		zw = gzip.NewWriter(&body)
		dst = zw
	}
	for _, i := range idx {
		_, _ = dst.Write(w.envs[i]) // a bytes.Buffer (or gzip into one) cannot fail
	}
	if zw != nil {
		_ = zw.Close()
	}

	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.ep.event, &body)
	if err != nil {
		return result{verdict: retry, reason: "splunk: " + err.Error(), invalid: -1}
	}
	req.Header.Set("Authorization", s.token.Header("Splunk"))
	req.Header.Set("Content-Type", "application/json")
	if zw != nil {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if s.cfg.Ack.Enabled {
		req.Header.Set("X-Splunk-Request-Channel", s.cfg.Ack.Channel)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return result{verdict: retry, reason: fmt.Sprintf("splunk: post %d events: %v", len(idx), transport.RequestErr(ctx, err)), invalid: -1}
	}
	b, err := transport.ReadBody(resp, maxResponse)
	if err != nil {
		return result{verdict: retry, reason: fmt.Sprintf("splunk: read response to %d events: %v", len(idx), transport.RequestErr(ctx, err)), invalid: -1}
	}
	return classify(resp.StatusCode, resp.Header, b, time.Now())
}

// hecResponse is a HEC response body.
type hecResponse struct {
	Text    string `json:"text"`
	Code    *int   `json:"code"`
	AckID   *int64 `json:"ackId"`
	Invalid *int   `json:"invalid-event-number"`
}

func (r *hecResponse) String() string {
	if r.Code == nil {
		return strconv.Quote(r.Text)
	}
	return fmt.Sprintf("code %d %q", *r.Code, r.Text)
}

// classify turns a response into a result; see the package documentation.
func classify(status int, h http.Header, body []byte, now time.Time) result {
	var hr hecResponse
	parsed := json.Unmarshal(body, &hr) == nil
	desc := fmt.Sprintf("HEC %d", status)
	if parsed {
		desc += " " + hr.String()
	} else if t := strings.TrimSpace(string(body)); t != "" {
		desc += " " + strconv.Quote(transport.Truncate(t, 200))
	}
	r := result{verdict: retry, invalid: -1}
	if hr.Invalid != nil {
		r.invalid = *hr.Invalid
	}
	switch {
	case status >= 200 && status < 300:
		if !parsed || hr.Code == nil || *hr.Code != codeSuccess {
			r.reason = "splunk: unexpected response: " + desc
			return r
		}
		r.verdict = accepted
		if hr.AckID != nil {
			r.ackID, r.hasAck = *hr.AckID, true
		}
		return r
	case status == http.StatusBadRequest && parsed && hr.Code != nil && isDataCode(*hr.Code):
		r.verdict, r.reason = badData, desc
		return r
	case status == http.StatusRequestEntityTooLarge:
		r.verdict, r.reason = badData, desc
		return r
	case status == http.StatusBadRequest:
		r.reason = "splunk: HEC refused the request, not the data (check index, ack and channel settings); events kept for retry: " + desc
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		r.reason = "splunk: HEC refused the token (check token_file/token_env and that the token is enabled); events kept for retry: " + desc
	default:
		r.reason = "splunk: " + desc
	}
	r.after = transport.RetryAfter(h, now)
	return r
}

func isDataCode(code int) bool {
	switch code {
	case codeNoData, codeInvalidDataFormat, codeEventRequired, codeEventBlank, codeIndexedFieldsError:
		return true
	}
	return false
}

// awaitAcks polls /services/collector/ack until every pending ackId is
// acknowledged, Ack.Timeout passes or ctx ends. Acknowledged events become
// Delivered; the others stay Retry with the reason.
func (w *write) awaitAcks(ctx context.Context) {
	if len(w.pending) == 0 {
		return
	}
	cfg := w.s.cfg.Ack
	deadline := time.NewTimer(cfg.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	var lastErr error
	for len(w.pending) > 0 {
		select {
		case <-ctx.Done():
			w.unacked("splunk: awaiting indexer acknowledgement: " + context.Cause(ctx).Error())
			return
		case <-deadline.C:
			reason := fmt.Sprintf("splunk: no indexer acknowledgement within %v", cfg.Timeout)
			if lastErr != nil {
				reason += " (last poll: " + lastErr.Error() + ")"
			}
			w.unacked(reason)
			return
		case <-tick.C:
		}
		acked, err := w.s.pollAcks(ctx, w.pending)
		if err != nil {
			lastErr = err
			continue
		}
		for id, ok := range acked {
			if idx, pending := w.pending[id]; ok && pending {
				w.set(idx, collector.Outcome{Status: collector.Delivered})
				delete(w.pending, id) // HEC forgets an ackId once reported true
			}
		}
	}
}

func (w *write) unacked(reason string) {
	for _, idx := range w.pending {
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: reason})
	}
}

// pollAcks asks HEC about the pending ackIds: POST {"acks":[ids]} on the
// channel, answered by {"acks":{"id":true|false}}.
func (s *Sink) pollAcks(ctx context.Context, pending map[int64][]int) (map[int64]bool, error) {
	ids := make([]int64, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	body, _ := json.Marshal(struct {
		Acks []int64 `json:"acks"`
	}{ids})
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.ep.ack, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", s.token.Header("Splunk"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Splunk-Request-Channel", s.cfg.Ack.Channel)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, transport.RequestErr(ctx, err)
	}
	b, err := transport.ReadBody(resp, maxResponse)
	if err != nil {
		return nil, transport.RequestErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(classify(resp.StatusCode, resp.Header, b, time.Now()).reason)
	}
	var ar struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(b, &ar); err != nil {
		return nil, fmt.Errorf("ack response %q: %w", transport.Truncate(string(b), 200), err)
	}
	acked := make(map[int64]bool, len(ar.Acks))
	for k, v := range ar.Acks {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			acked[id] = v
		}
	}
	return acked, nil
}
