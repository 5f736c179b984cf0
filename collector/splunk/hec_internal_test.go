package splunk

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClassify is the error classification table of the package
// documentation, response by response. The HEC codes are Splunk's
// documented ones ("Troubleshoot HTTP Event Collector").
func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, c := range []struct {
		name      string
		status    int
		header    http.Header
		body      string
		verdict   verdict
		reasonHas string
		after     time.Duration
		invalid   int
		ackID     int64
		hasAck    bool
	}{
		{"success", 200, nil, `{"text":"Success","code":0}`, accepted, "", 0, -1, 0, false},
		{"success with ack", 200, nil, `{"text":"Success","code":0,"ackId":42}`, accepted, "", 0, -1, 42, true},
		{"200 not HEC", 200, nil, `<html>login</html>`, retry, "unexpected response", 0, -1, 0, false},
		{"200 other code", 200, nil, `{"text":"HEC is healthy","code":17}`, retry, "unexpected response", 0, -1, 0, false},
		{"no data", 400, nil, `{"text":"No data","code":5}`, badData, "code 5", 0, -1, 0, false},
		{"invalid data format", 400, nil, `{"text":"Invalid data format","code":6,"invalid-event-number":3}`, badData, "code 6", 0, 3, 0, false},
		{"event required", 400, nil, `{"text":"Event field is required","code":12,"invalid-event-number":0}`, badData, "code 12", 0, 0, 0, false},
		{"event blank", 400, nil, `{"text":"Event field cannot be blank","code":13,"invalid-event-number":1}`, badData, "code 13", 0, 1, 0, false},
		{"indexed fields", 400, nil, `{"text":"Error in handling indexed fields","code":15,"invalid-event-number":2}`, badData, "code 15", 0, 2, 0, false},
		{"too large", 413, nil, `Request Entity Too Large`, badData, "413", 0, -1, 0, false},
		{"incorrect index", 400, nil, `{"text":"Incorrect index","code":7,"invalid-event-number":0}`, retry, "not the data", 0, 0, 0, false},
		{"channel missing", 400, nil, `{"text":"Data channel is missing","code":10}`, retry, "code 10", 0, -1, 0, false},
		{"invalid channel", 400, nil, `{"text":"Invalid data channel","code":11}`, retry, "code 11", 0, -1, 0, false},
		{"ack disabled", 400, nil, `{"text":"ACK is disabled","code":14}`, retry, "code 14", 0, -1, 0, false},
		{"400 from a proxy", 400, nil, `bad request`, retry, "not the data", 0, -1, 0, false},
		{"token disabled", 403, nil, `{"text":"Token disabled","code":1}`, retry, "refused the token", 0, -1, 0, false},
		{"token required", 401, nil, `{"text":"Token is required","code":2}`, retry, "refused the token", 0, -1, 0, false},
		{"invalid authorization", 401, nil, `{"text":"Invalid authorization","code":3}`, retry, "refused the token", 0, -1, 0, false},
		{"invalid token", 403, nil, `{"text":"Invalid token","code":4}`, retry, "refused the token", 0, -1, 0, false},
		{"internal error", 500, nil, `{"text":"Internal server error","code":8}`, retry, "HEC 500 code 8", 0, -1, 0, false},
		{"busy, seconds", 503, hdr("Retry-After", "7"), `{"text":"Server is busy","code":9}`, retry, "code 9", 7 * time.Second, -1, 0, false},
		{"busy, date", 503, hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), `{"text":"Server is busy","code":9}`, retry, "503", 90 * time.Second, -1, 0, false},
		{"too many requests", 429, hdr("Retry-After", "2"), ``, retry, "429", 2 * time.Second, -1, 0, false},
		{"bad Retry-After", 429, hdr("Retry-After", "soon"), ``, retry, "429", 0, -1, 0, false},
		{"gateway", 502, nil, `<html>bad gateway</html>`, retry, "502", 0, -1, 0, false},
		{"not found", 404, nil, `404 page not found`, retry, "404", 0, -1, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := classify(c.status, c.header, []byte(c.body), now)
			if r.verdict != c.verdict || !strings.Contains(r.reason, c.reasonHas) || r.after != c.after || r.invalid != c.invalid || r.ackID != c.ackID || r.hasAck != c.hasAck {
				t.Errorf("classify(%d, %q) = %+v; want verdict %d, reason containing %q, after %v, invalid %d, ack %d/%t",
					c.status, c.body, r, c.verdict, c.reasonHas, c.after, c.invalid, c.ackID, c.hasAck)
			}
		})
	}
}
