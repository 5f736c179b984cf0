package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// maxResponse bounds how much of a bulk response is read: a response item
// is a few hundred bytes, so this covers batches of tens of thousands.
const maxResponse = 64 << 20

// write is the state of one Write.
type write struct {
	s     *Sink
	out   []collector.Outcome
	lines [][]byte // action and document lines, by batch index
}

// post sends the lines of idx and records their outcomes, splitting the
// request when the cluster finds it too large.
func (w *write) post(ctx context.Context, idx []int) {
	status, h, body, err := w.send(ctx, idx)
	if err != nil {
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: fmt.Sprintf("elastic: bulk of %d events: %v", len(idx), err)})
		return
	}
	switch {
	case status >= 200 && status < 300:
		w.items(idx, body)
	case status == http.StatusRequestEntityTooLarge && len(idx) > 1:
		half := len(idx) / 2
		w.post(ctx, idx[:half])
		w.post(ctx, idx[half:])
	case status == http.StatusRequestEntityTooLarge:
		w.set(idx, collector.Outcome{Status: collector.Reject, Reason: "elastic: the event alone is larger than the cluster accepts: " + describe(status, body)})
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		w.set(idx, collector.Outcome{Status: collector.Retry, RetryAfter: transport.RetryAfter(h, time.Now()),
			Reason: "elastic: the cluster refused the credentials (check username/password or the API key and its privileges on the index); events kept for retry: " + describe(status, body)})
	default:
		w.set(idx, collector.Outcome{Status: collector.Retry, RetryAfter: transport.RetryAfter(h, time.Now()),
			Reason: "elastic: bulk request refused: " + describe(status, body)})
	}
}

func (w *write) set(idx []int, o collector.Outcome) {
	for _, i := range idx {
		w.out[i] = o
	}
}

// send POSTs the lines of idx once and returns the response.
func (w *write) send(ctx context.Context, idx []int) (int, http.Header, []byte, error) {
	s := w.s
	if err := context.Cause(ctx); err != nil {
		return 0, nil, nil, err
	}
	n := 0
	for _, i := range idx {
		n += len(w.lines[i])
	}
	body := make([]byte, 0, n)
	for _, i := range idx {
		body = append(body, w.lines[i]...)
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.bulk, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Accept", "application/json")
	if s.auth != "" {
		req.Header.Set("Authorization", string(s.auth))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, transport.RequestErr(ctx, err)
	}
	b, err := transport.ReadBody(resp, maxResponse)
	if err != nil {
		return 0, nil, nil, transport.RequestErr(ctx, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// bulkResponse is the bulk API's answer.
type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

// bulkItem is one action's result.
type bulkItem struct {
	ID     string     `json:"_id"`
	Status int        `json:"status"`
	Error  *bulkError `json:"error"`
}

type bulkError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *bulkError `json:"caused_by"`
}

func (e *bulkError) String() string {
	if e == nil {
		return ""
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil {
		s += " (caused by " + e.CausedBy.String() + ")"
	}
	return s
}

// items sets the outcomes of idx from a 2xx bulk response: item i answers
// action i.
func (w *write) items(idx []int, body []byte) {
	var r bulkResponse
	if err := json.Unmarshal(body, &r); err != nil {
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: fmt.Sprintf("elastic: unreadable bulk response (%v): %q", err, transport.Truncate(string(body), 200))})
		return
	}
	if len(r.Items) != len(idx) {
		w.set(idx, collector.Outcome{Status: collector.Retry, Reason: fmt.Sprintf("elastic: bulk response has %d items for %d actions", len(r.Items), len(idx))})
		return
	}
	for k, i := range idx {
		if len(r.Items[k]) != 1 {
			w.out[i] = collector.Outcome{Status: collector.Retry, Reason: fmt.Sprintf("elastic: bulk response item %d has %d results", k, len(r.Items[k]))}
			continue
		}
		for _, it := range r.Items[k] {
			w.out[i] = itemOutcome(it)
		}
	}
}

// itemOutcome classifies one bulk item; see the package documentation.
func itemOutcome(it bulkItem) collector.Outcome {
	desc := strconv.Itoa(it.Status)
	if it.Error != nil {
		desc += " " + it.Error.String()
	}
	switch s := it.Status; {
	case s >= 200 && s < 300:
		return collector.Outcome{Status: collector.Delivered}
	case s == http.StatusConflict:
		return collector.Outcome{Status: collector.Delivered} // created by an earlier delivery
	case s == http.StatusTooManyRequests || s >= 500:
		return collector.Outcome{Status: collector.Retry, Reason: "elastic: " + desc}
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusRequestTimeout:
		return collector.Outcome{Status: collector.Retry, Reason: "elastic: the cluster cannot take documents into this index now (check privileges, index blocks, the data stream template); events kept for retry: " + desc}
	case s >= 400:
		return collector.Outcome{Status: collector.Reject, Reason: "elastic: document refused: " + desc}
	}
	return collector.Outcome{Status: collector.Retry, Reason: "elastic: unexpected item status " + desc}
}

// describe renders a whole-request error: status and the error's type and
// reason, or the start of the body.
func describe(status int, body []byte) string {
	var e struct {
		Error  json.RawMessage `json:"error"`
		Status int             `json:"status"`
	}
	s := strconv.Itoa(status)
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var be bulkError
		if json.Unmarshal(e.Error, &be) == nil && be.Type != "" {
			return s + " " + be.String()
		}
		var text string
		if json.Unmarshal(e.Error, &text) == nil {
			return s + " " + text
		}
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		s += " " + strconv.Quote(transport.Truncate(t, 200))
	}
	return s
}
