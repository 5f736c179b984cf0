package elastic_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
	"github.com/sandtrail/sandtrail/collector/sinktest"
)

// capture records request bodies and answers like a successful bulk.
type capture struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	uris    []string
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.headers = append(c.headers, r.Header.Clone())
	c.uris = append(c.uris, r.Method+" "+r.URL.RequestURI())
	c.mu.Unlock()
	n := bytes.Count(b, []byte("\n")) / 2
	jsonReply(w, 200, `{"took":1,"errors":false,"items":[`+strings.TrimSuffix(strings.Repeat(`{"create":{"status":201}},`, n), ",")+`]}`)
}

// TestWireFormat checks the request against the bulk API format: path,
// headers, create actions with _index and _id, and each document the event
// with exactly "@timestamp" added first (compacted, not HTML-escaped).
func TestWireFormat(t *testing.T) {
	c := &capture{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	pretty := "{\n  \"class_uid\": 2003,\n  \"message\": \"a <b> & c\",\n  \"metadata\": {\"uid\": \"u-1\"}\n}\n"
	batch := []collector.Event{
		{UID: "u-1", ClassUID: 2003, Time: 1764170001123, Data: []byte(pretty)},
		{UID: "u-2", ClassUID: 5019, Time: 1764170001000, Data: []byte(`{}`)},
		{UID: "", ClassUID: 5019, Time: 0, Data: []byte(` {"x":1}`)},
	}
	s := newSink(t, elastic.Config{URL: srv.URL + "/es?pipeline=ocsf"})
	sinktest.CheckAll(t, s.Write(t.Context(), batch), 3, collector.Delivered, "")

	want := `{"create":{"_index":"logs-ocsf.sandtrail-default","_id":"u-1"}}
{"@timestamp":"2025-11-26T15:13:21.123Z","class_uid":2003,"message":"a <b> & c","metadata":{"uid":"u-1"}}
{"create":{"_index":"logs-ocsf.sandtrail-default","_id":"u-2"}}
{"@timestamp":"2025-11-26T15:13:21.000Z"}
{"create":{"_index":"logs-ocsf.sandtrail-default"}}
{"@timestamp":"1970-01-01T00:00:00.000Z","x":1}
`
	if diff := cmp.Diff(want, string(c.bodies[0])); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if got, want := c.uris[0], "POST /es/_bulk?pipeline=ocsf"; got != want {
		t.Errorf("request %q, want %q (the URL's path and query kept)", got, want)
	}
	if got := c.headers[0].Get("Content-Type"); got != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := c.headers[0].Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q without credentials", got)
	}

	// AddTimestamp false and another index: the document is the event.
	s = newSink(t, elastic.Config{URL: srv.URL, Index: "ocsf-events", AddTimestamp: new(false)})
	sinktest.CheckAll(t, s.Write(t.Context(), batch[:1]), 1, collector.Delivered, "")
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(pretty))
	want = `{"create":{"_index":"ocsf-events","_id":"u-1"}}` + "\n" + compact.String() + "\n"
	if diff := cmp.Diff(want, string(c.bodies[1])); diff != "" {
		t.Errorf("body without timestamp (-want +got):\n%s", diff)
	}
}

// TestItems: a mixed response, 201, 409, 429, 400 (and a 503 item), becomes
// Delivered, Delivered, Retry, Reject (and Retry), each reason from the
// item's error. An httptest fake, because VictoriaLogs never reports a
// per-item error.
func TestItems(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()
	s := newSink(t, elastic.Config{URL: srv.URL})
	evs := sinktest.SmallEvents(5, "items")
	sinktest.CheckAll(t, s.Write(t.Context(), evs[1:2]), 1, collector.Delivered, "") // event 1 exists before the batch

	batch := []collector.Event{evs[0], evs[1], mark(evs[2], "throttle"), mark(evs[3], "poison"), mark(evs[4], "unavailable")}
	out := s.Write(t.Context(), batch)
	want := []struct {
		status collector.Status
		reason string
	}{
		{collector.Delivered, ""},
		{collector.Delivered, ""},
		{collector.Retry, "elastic: 429 es_rejected_execution_exception: rejected execution"},
		{collector.Reject, "elastic: document refused: 400 document_parsing_exception: [1:42] failed to parse field [message]"},
		{collector.Retry, "elastic: 503 unavailable_shards_exception"},
	}
	for i, w := range want {
		if out[i].Status != w.status || !strings.HasPrefix(out[i].Reason, w.reason) {
			t.Errorf("event %d: %v %q, want %v %q", i, out[i].Status, out[i].Reason, w.status, w.reason)
		}
	}
	keys, _ := fake.stored()
	if len(keys) != 2 {
		t.Errorf("stored %v, want the two good events once each", keys)
	}
}

// TestRedelivery: the same batch written twice is Delivered twice and
// stored once (create with _id: the second time every item is a 409).
func TestRedelivery(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()
	s := newSink(t, elastic.Config{URL: srv.URL})
	evs := sinktest.SmallEvents(10, "redeliver")
	sinktest.CheckAll(t, s.Write(t.Context(), evs), 10, collector.Delivered, "")
	sinktest.CheckAll(t, s.Write(t.Context(), evs), 10, collector.Delivered, "")
	if keys, _ := fake.stored(); len(keys) != 10 {
		t.Errorf("stored %d documents, want 10", len(keys))
	}
}

// TestMissingTimestamp shows why AddTimestamp defaults to true: a data
// stream refuses a document without @timestamp, for good.
func TestMissingTimestamp(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()
	s := newSink(t, elastic.Config{URL: srv.URL, AddTimestamp: new(false)})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "nots")), 2, collector.Reject, "timestamp field [@timestamp] is missing")
}

// TestResponses: whole-request answers, one batch of three each. An
// httptest fake, because VictoriaLogs returns none of these.
func TestResponses(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		retryAfter string
		body       string
		want       collector.Status
		reasonHas  string
		after      time.Duration
	}{
		{"429 with Retry-After", 429, "5", errorBody(429, "es_rejected_execution_exception", "rejected execution of coordinating operation"), collector.Retry, "bulk request refused: 429 es_rejected_execution_exception", 5 * time.Second},
		{"503 with Retry-After date", 503, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), ``, collector.Retry, "503", time.Hour},
		{"401", 401, "", errorBody(401, "security_exception", "missing authentication credentials"), collector.Retry, "refused the credentials", 0},
		{"403", 403, "", errorBody(403, "security_exception", "action [indices:data/write/bulk[s]] is unauthorized"), collector.Retry, "refused the credentials", 0},
		{"400 request", 400, "", errorBody(400, "illegal_argument_exception", "Malformed action/metadata line [1]"), collector.Retry, "bulk request refused: 400 illegal_argument_exception", 0},
		{"404", 404, "", `404 page not found`, collector.Retry, "404", 0},
		{"500", 500, "", errorBody(500, "null_pointer_exception", "oops"), collector.Retry, "500", 0},
		{"413 even alone", 413, "", ``, collector.Reject, "larger than the cluster accepts", 0},
		{"200 not bulk", 200, "", `<html>proxy login</html>`, collector.Retry, "unreadable bulk response", 0},
		{"200 wrong items", 200, "", `{"errors":false,"items":[{"create":{"status":201}}]}`, collector.Retry, "1 items for", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				jsonReply(w, c.status, c.body)
			}))
			defer srv.Close()
			s := newSink(t, elastic.Config{URL: srv.URL})
			out := s.Write(t.Context(), sinktest.SmallEvents(3, "resp"))
			sinktest.CheckAll(t, out, 3, c.want, c.reasonHas)
			for i, o := range out {
				if d := o.RetryAfter - c.after; d < -2*time.Second || d > 0 {
					t.Errorf("outcome %d RetryAfter = %v, want %v", i, o.RetryAfter, c.after)
				}
			}
		})
	}
}

// TestTooLarge: a request over the cluster's limit is split until it fits;
// an event too large alone is rejected.
func TestTooLarge(t *testing.T) {
	fake := newFakeES()
	fake.maxBytes = 1200
	srv := fake.start()
	defer srv.Close()
	s := newSink(t, elastic.Config{URL: srv.URL})
	evs := sinktest.SmallEvents(8, "large")
	evs[5].Data = []byte(strings.Replace(string(evs[5].Data), `"message":"`, `"message":"`+strings.Repeat("x", 1500), 1))
	out := s.Write(t.Context(), evs)
	for i, o := range out {
		want := collector.Delivered
		if i == 5 {
			want = collector.Reject
		}
		if o.Status != want {
			t.Errorf("event %d: %v %q, want %v", i, o.Status, o.Reason, want)
		}
	}
	if keys, _ := fake.stored(); len(keys) != 7 {
		t.Errorf("stored %d, want 7", len(keys))
	}
}

// TestAuth: basic authentication from a password file, an API key from the
// environment; wrong credentials keep the events for retry.
func TestAuth(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()

	fake.mu.Lock()
	fake.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("sandtrail:s3cret"))
	fake.mu.Unlock()
	s := newSink(t, elastic.Config{URL: srv.URL, Username: "sandtrail", PasswordFile: writeFile(t, "pw", "s3cret\n")})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "basic")), 2, collector.Delivered, "")

	fake.mu.Lock()
	fake.auth = "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	fake.mu.Unlock()
	t.Setenv("SANDTRAIL_TEST_ES_KEY", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
	s = newSink(t, elastic.Config{URL: srv.URL, APIKeyEnv: "SANDTRAIL_TEST_ES_KEY", LookupEnv: os.LookupEnv})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "apikey")), 2, collector.Delivered, "")

	s = newSink(t, elastic.Config{URL: srv.URL, Username: "sandtrail", PasswordFile: writeFile(t, "pw", "wrong")})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "wrong")), 2, collector.Retry, "refused the credentials")
}

// TestTLS reaches an https cluster with the CA file, fails without it
// (Retry: nothing is lost), and with insecure_skip_verify.
func TestTLS(t *testing.T) {
	fake := newFakeES()
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	ca := writeCA(t, srv)

	s := newSink(t, elastic.Config{URL: srv.URL, TLS: elastic.TLSConfig{CAFile: ca}})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls")), 2, collector.Delivered, "")
	s = newSink(t, elastic.Config{URL: srv.URL})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls2")), 2, collector.Retry, "certificate")
	s = newSink(t, elastic.Config{URL: srv.URL, TLS: elastic.TLSConfig{InsecureSkipVerify: true}})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls3")), 2, collector.Delivered, "")
}

// TestRejectBeforeSending: an event that is not a JSON object never reaches
// the wire; the rest of the batch does.
func TestRejectBeforeSending(t *testing.T) {
	fake := newFakeES()
	srv := fake.start()
	defer srv.Close()
	evs := sinktest.SmallEvents(3, "notobj")
	evs[1].Data = []byte(`["not","an","object"]`)
	evs[2].Data = []byte(`{"truncated":`)
	out := newSink(t, elastic.Config{URL: srv.URL}).Write(t.Context(), evs)
	if out[0].Status != collector.Delivered || out[1].Status != collector.Reject || out[2].Status != collector.Reject {
		t.Errorf("outcomes %v, want delivered, reject, reject", out)
	}
	if !strings.Contains(out[1].Reason, "not a JSON object") || !strings.Contains(out[2].Reason, "not valid JSON") {
		t.Errorf("reasons %q, %q", out[1].Reason, out[2].Reason)
	}
	if requests, _ := fake.seen(); requests != 1 {
		t.Errorf("%d requests, want 1", requests)
	}
}
