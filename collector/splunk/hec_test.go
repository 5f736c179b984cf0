package splunk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/splunk"
)

// TestEnvelope checks the request on the wire against the HEC format: the
// headers, gzip, and each envelope's members, with the event embedded
// unchanged (compacted, not HTML-escaped).
func TestEnvelope(t *testing.T) {
	fake := newFakeHEC(testToken)
	srv := fake.start()
	defer srv.Close()

	pretty := "{\n  \"class_uid\": 2003,\n  \"message\": \"a <b> & c\",\n  \"metadata\": {\"uid\": \"u-1\"}\n}\n"
	batch := []collector.Event{
		{UID: "u-1", ClassUID: 2003, ClassName: "Compliance Finding", SeverityID: 4, Time: 1764170001123,
			RunID: "run-1", Host: "host-a", Data: []byte(pretty)},
		{UID: "u-2", ClassUID: 5019, ClassName: "Device Config State Change", SeverityID: 1, Time: 1764170001000,
			Data: []byte(`{"class_uid":5019,"metadata":{"uid":"u-2"}}`)},
	}
	s := newSink(t, splunk.Config{URL: srv.URL})
	sinktest.CheckAll(t, s.Write(t.Context(), batch), 2, collector.Delivered, "")

	headers, bodies := fake.requestsSeen()
	if len(headers) != 1 {
		t.Fatalf("got %d requests, want 1", len(headers))
	}
	h := headers[0]
	for k, want := range map[string]string{
		"Authorization":            "Splunk " + testToken,
		"Content-Type":             "application/json",
		"Content-Encoding":         "gzip",
		"X-Splunk-Request-Channel": "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(pretty))
	want := []envelope{{
		Time: "1764170001.123", Host: "host-a", Source: "sandtrail", Sourcetype: "ocsf:compliance_finding",
		Event:  compact.Bytes(),
		Fields: map[string]string{"class_uid": "2003", "severity_id": "4", "run_id": "run-1", "event_uid": "u-1"},
	}, {
		Time: "1764170001.000", Source: "sandtrail", Sourcetype: "ocsf:device_config_state_change",
		Event:  json.RawMessage(`{"class_uid":5019,"metadata":{"uid":"u-2"}}`),
		Fields: map[string]string{"class_uid": "5019", "severity_id": "1", "event_uid": "u-2"},
	}}
	indexed, _, _ := fake.snapshot()
	if diff := cmp.Diff(want, indexed); diff != "" {
		t.Errorf("envelopes (-want +got):\n%s", diff)
	}
	if !bytes.Contains(bodies[0], []byte(`"message":"a <b> & c"`)) {
		t.Errorf("body %s: the event's text was escaped", bodies[0])
	}

	// Overrides, no compression.
	fake2 := newFakeHEC(testToken)
	srv2 := fake2.start()
	defer srv2.Close()
	s2 := newSink(t, splunk.Config{URL: srv2.URL, Index: "ocsf", Host: "collector-1", Source: "st", Sourcetype: "ocsf:sandtrail", Compression: splunk.CompressionNone})
	sinktest.CheckAll(t, s2.Write(t.Context(), batch[1:]), 1, collector.Delivered, "")
	headers2, _ := fake2.requestsSeen()
	if got := headers2[0].Get("Content-Encoding"); got != "" {
		t.Errorf("Content-Encoding = %q with compression none", got)
	}
	indexed2, _, _ := fake2.snapshot()
	e := indexed2[0]
	if e.Index != "ocsf" || e.Host != "collector-1" || e.Source != "st" || e.Sourcetype != "ocsf:sandtrail" {
		t.Errorf("envelope %+v: overrides not applied", e)
	}
}

// TestResponses posts a batch of three to a server answering one fixed
// response, and checks the outcomes: the classification table, end to end.
// An httptest fake, because VictoriaLogs returns none of these errors.
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
		{"success", 200, "", `{"text":"Success","code":0}`, collector.Delivered, "", 0},
		{"data error, each event refused alone", 400, "", `{"text":"Invalid data format","code":6}`, collector.Reject, "HEC refused the event: HEC 400 code 6", 0},
		{"too large even alone", 413, "", ``, collector.Reject, "413", 0},
		{"incorrect index", 400, "", `{"text":"Incorrect index","code":7}`, collector.Retry, "code 7", 0},
		{"unauthorized", 401, "", `{"text":"Invalid authorization","code":3}`, collector.Retry, "refused the token", 0},
		{"forbidden", 403, "", `{"text":"Token disabled","code":1}`, collector.Retry, "refused the token", 0},
		{"too many requests", 429, "3", ``, collector.Retry, "429", 3 * time.Second},
		{"busy", 503, "11", `{"text":"Server is busy","code":9}`, collector.Retry, "code 9", 11 * time.Second},
		{"internal error", 500, "", `{"text":"Internal server error","code":8}`, collector.Retry, "code 8", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				reply(w, c.status, c.body)
			}))
			defer srv.Close()
			s := newSink(t, splunk.Config{URL: srv.URL})
			out := s.Write(t.Context(), sinktest.SmallEvents(3, "r"))
			sinktest.CheckAll(t, out, 3, c.want, c.reasonHas)
			for i, o := range out {
				if o.RetryAfter != c.after {
					t.Errorf("outcome %d RetryAfter = %v, want %v", i, o.RetryAfter, c.after)
				}
			}
			if c.want == collector.Reject && requests.Load() != 5 { // 3, then 1 + 2, then 1 + 1
				t.Errorf("%d requests to isolate 3 bad events, want 5", requests.Load())
			}
		})
	}
}

// TestIsolateBadEvents puts two events HEC refuses among ten: they alone are
// rejected, the eight others indexed, both when HEC names the bad event
// (invalid-event-number) and when the sink must bisect.
func TestIsolateBadEvents(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omitInvalidNumber=%t", omit), func(t *testing.T) {
			fake := newFakeHEC(testToken)
			fake.omitInvalidNumber = omit
			srv := fake.start()
			defer srv.Close()
			evs := sinktest.SmallEvents(10, "iso")
			for _, i := range []int{3, 7} {
				evs[i].Data = bytes.Replace(evs[i].Data, []byte(`"message":"`), []byte(`"message":"poison `), 1)
			}
			s := newSink(t, splunk.Config{URL: srv.URL})
			out := s.Write(t.Context(), evs)
			for i, o := range out {
				want := collector.Delivered
				if i == 3 || i == 7 {
					want = collector.Reject
				}
				if o.Status != want {
					t.Errorf("outcome %d = %v %q, want %v", i, o.Status, o.Reason, want)
				}
			}
			indexed, requests, _ := fake.snapshot()
			var got []string
			for _, e := range indexed {
				got = append(got, e.Fields["event_uid"])
			}
			slices.Sort(got)
			var want []string
			for i, e := range evs {
				if i != 3 && i != 7 {
					want = append(want, e.UID)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("indexed event uids (-want +got):\n%s", diff)
			}
			if requests > 2*len(evs) {
				t.Errorf("%d requests for %d events", requests, len(evs))
			}
			t.Logf("%d requests", requests)
		})
	}
}

// TestWrongToken: a token HEC refuses keeps every event for retry, with a
// reason that names the token; nothing is dead-lettered.
func TestWrongToken(t *testing.T) {
	fake := newFakeHEC(testToken)
	srv := fake.start()
	defer srv.Close()
	t.Setenv("SANDTRAIL_TEST_HEC_TOKEN", "not-the-token")
	s := newSink(t, splunk.Config{URL: srv.URL, TokenEnv: "SANDTRAIL_TEST_HEC_TOKEN", LookupEnv: os.LookupEnv})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(4, "tok")), 4, collector.Retry, "refused the token")
	if n := fake.indexedCount(); n != 0 {
		t.Errorf("%d events indexed with a wrong token", n)
	}
}

// TestAck exercises indexer acknowledgement against the fake, in a
// synctest bubble (the default one-minute ack timeout passes in fake time).
// An httptest fake, because VictoriaLogs has no /services/collector/ack.
func TestAck(t *testing.T) {
	run := func(t *testing.T, fake *fakeHEC, cfg splunk.Config, evs []collector.Event) ([]collector.Outcome, time.Duration) {
		t.Helper()
		cfg.URL = "http://hec.invalid:8088"
		cfg.Ack.Enabled = true
		s := newSink(t, cfg)
		splunk.SetTransport(s, handlerTransport{fake})
		start := time.Now()
		out := s.Write(t.Context(), evs)
		return out, time.Since(start)
	}

	t.Run("acknowledged", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newFakeHEC(testToken)
			fake.ack, fake.ackAfter = true, 2
			const channel = "0b8c5f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"
			out, took := run(t, fake, splunk.Config{Ack: splunk.AckConfig{Channel: channel}}, sinktest.SmallEvents(5, "ack"))
			sinktest.CheckAll(t, out, 5, collector.Delivered, "")
			_, _, polls := fake.snapshot()
			if polls != 3 || took != 3*splunk.DefaultAckPollInterval {
				t.Errorf("acked after %d polls in %v; want 3 polls, %v", polls, took, 3*splunk.DefaultAckPollInterval)
			}
			if headers, _ := fake.requestsSeen(); headers[0].Get("X-Splunk-Request-Channel") != channel {
				got := headers[0].Get("X-Splunk-Request-Channel")
				t.Errorf("X-Splunk-Request-Channel = %q, want %q", got, channel)
			}
		})
	})
	t.Run("never acknowledged", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newFakeHEC(testToken)
			fake.ack, fake.ackAfter = true, -1
			out, took := run(t, fake, splunk.Config{}, sinktest.SmallEvents(5, "noack"))
			sinktest.CheckAll(t, out, 5, collector.Retry, "no indexer acknowledgement within 1m0s")
			if took != splunk.DefaultAckTimeout {
				t.Errorf("gave up after %v, want %v", took, splunk.DefaultAckTimeout)
			}
			if fake.indexedCount() != 5 {
				t.Errorf("fake indexed %d events, want 5 (sent, never acknowledged)", fake.indexedCount())
			}
		})
	})
	t.Run("token without acknowledgement", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newFakeHEC(testToken) // answers without ackId
			out, _ := run(t, fake, splunk.Config{}, sinktest.SmallEvents(2, "noackid"))
			sinktest.CheckAll(t, out, 2, collector.Retry, "no ackId")
		})
	})
	t.Run("bad event among acknowledged", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newFakeHEC(testToken)
			fake.ack, fake.ackAfter = true, 0
			evs := sinktest.SmallEvents(6, "ackbad")
			evs[4].Data = bytes.Replace(evs[4].Data, []byte(`"message":"`), []byte(`"message":"poison `), 1)
			out, _ := run(t, fake, splunk.Config{Ack: splunk.AckConfig{PollInterval: 10 * time.Millisecond}}, evs)
			got := statuses(out)
			if got[collector.Delivered] != 5 || out[4].Status != collector.Reject {
				t.Errorf("outcomes %v (event 4: %v %q); want 5 delivered and event 4 rejected", got, out[4].Status, out[4].Reason)
			}
		})
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newFakeHEC(testToken)
			fake.ack, fake.ackAfter = true, -1
			s := newSink(t, splunk.Config{URL: "http://hec.invalid", Ack: splunk.AckConfig{Enabled: true}})
			splunk.SetTransport(s, handlerTransport{fake})
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			out := s.Write(ctx, sinktest.SmallEvents(3, "ackcancel"))
			sinktest.CheckAll(t, out, 3, collector.Retry, "awaiting indexer acknowledgement: context deadline exceeded")
		})
	})
}

// TestTLS reaches an https HEC with the CA file, fails without it (Retry:
// nothing is lost), and with insecure_skip_verify.
func TestTLS(t *testing.T) {
	fake := newFakeHEC(testToken)
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	ca := writeCA(t, srv)

	s := newSink(t, splunk.Config{URL: srv.URL, TLS: splunk.TLSConfig{CAFile: ca}})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls")), 2, collector.Delivered, "")

	s = newSink(t, splunk.Config{URL: srv.URL})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls")), 2, collector.Retry, "certificate")

	s = newSink(t, splunk.Config{URL: srv.URL, TLS: splunk.TLSConfig{InsecureSkipVerify: true}})
	sinktest.CheckAll(t, s.Write(t.Context(), sinktest.SmallEvents(2, "tls")), 2, collector.Delivered, "")
}
