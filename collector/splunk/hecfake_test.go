package splunk_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

// fakeHEC is an httptest fake of the parts of Splunk HEC that no receiver
// runnable here implements (VictoriaLogs checks no token, has no ack
// endpoint and returns no HEC error codes). It follows Splunk's documented
// protocol; the facts it relies on:
//
//   - POST /services/collector/event with "Authorization: Splunk <token>";
//     no header: 401 {"text":"Token is required","code":2}; a wrong token:
//     403 {"text":"Invalid token","code":4}.
//   - The body is concatenated JSON envelopes, gzip when Content-Encoding
//     says so. An envelope without "event": 400 code 12 "Event field is
//     required"; an event HEC cannot take: 400 code 6 "Invalid data format"
//     with "invalid-event-number", the 0-based index of the first bad
//     envelope in the request. Nothing of a refused request is indexed
//     (Splunk may index the envelopes before the bad one; the sink resends
//     them either way, so the fake's stricter choice loses nothing).
//   - With indexer acknowledgement on, a request without
//     X-Splunk-Request-Channel gets 400 {"text":"Data channel is
//     missing","code":10}; an accepted one gets
//     {"text":"Success","code":0,"ackId":N}, ackIds counting from 0 per
//     channel.
//   - POST /services/collector/ack on the channel with {"acks":[ids]} gets
//     {"acks":{"<id>":true|false}}; once reported true, an id is forgotten
//     and later polls say false.
//
// A "poison" event (one whose JSON contains "poison") stands for an event
// Splunk cannot accept: the sink itself never produces malformed JSON.
type fakeHEC struct {
	token string
	ack   bool
	// ackAfter is how many polls an ackId needs before it reads true;
	// negative: never.
	ackAfter int
	// omitInvalidNumber drops invalid-event-number from code 6 responses,
	// as some HEC versions and proxies do, forcing the sink to bisect.
	omitInvalidNumber bool

	mu       sync.Mutex
	down     bool       // answer 503 Server is busy, as an overloaded HEC does
	indexed  []envelope // accepted envelopes
	requests int        // event POSTs
	polls    int        // ack POSTs
	nextAck  map[string]int64
	acks     map[string]map[int64]int // channel -> ackId -> polls seen
	bodies   [][]byte                 // decompressed event bodies
	headers  []http.Header
}

// envelope is the HEC envelope as the fake decodes it.
type envelope struct {
	Time       json.Number       `json:"time"`
	Host       string            `json:"host"`
	Source     string            `json:"source"`
	Sourcetype string            `json:"sourcetype"`
	Index      string            `json:"index"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

func newFakeHEC(token string) *fakeHEC {
	return &fakeHEC{token: token, nextAck: map[string]int64{}, acks: map[string]map[int64]int{}}
}

func (f *fakeHEC) start() *httptest.Server {
	return httptest.NewServer(f)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		reply(w, http.StatusUnauthorized, `{"text":"Token is required","code":2}`)
		return
	case auth != "Splunk "+f.token:
		reply(w, http.StatusForbidden, `{"text":"Invalid token","code":4}`)
		return
	}
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		w.Header().Set("Retry-After", "1")
		reply(w, http.StatusServiceUnavailable, `{"text":"Server is busy","code":9}`)
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if f.ack && channel == "" {
		reply(w, http.StatusBadRequest, `{"text":"Data channel is missing","code":10}`)
		return
	}
	switch r.URL.Path {
	case "/services/collector/event":
		f.event(w, r, channel)
	case "/services/collector/ack":
		f.ackPoll(w, r, channel)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeHEC) event(w http.ResponseWriter, r *http.Request, channel string) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			reply(w, http.StatusBadRequest, `{"text":"Invalid data format","code":6}`)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		reply(w, http.StatusBadRequest, `{"text":"Invalid data format","code":6}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.bodies = append(f.bodies, raw)
	f.headers = append(f.headers, r.Header.Clone())

	var got []envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	for n := 0; dec.More(); n++ {
		var e envelope
		if err := dec.Decode(&e); err != nil || bytes.Contains(e.Event, []byte("poison")) {
			f.invalid(w, n)
			return
		}
		if len(e.Event) == 0 {
			reply(w, http.StatusBadRequest, fmt.Sprintf(`{"text":"Event field is required","code":12,"invalid-event-number":%d}`, n))
			return
		}
		got = append(got, e)
	}
	if len(got) == 0 {
		reply(w, http.StatusBadRequest, `{"text":"No data","code":5}`)
		return
	}
	f.indexed = append(f.indexed, got...)
	if !f.ack {
		reply(w, http.StatusOK, `{"text":"Success","code":0}`)
		return
	}
	id := f.nextAck[channel]
	f.nextAck[channel]++
	if f.acks[channel] == nil {
		f.acks[channel] = map[int64]int{}
	}
	f.acks[channel][id] = 0
	reply(w, http.StatusOK, fmt.Sprintf(`{"text":"Success","code":0,"ackId":%d}`, id))
}

func (f *fakeHEC) invalid(w http.ResponseWriter, n int) {
	if f.omitInvalidNumber {
		reply(w, http.StatusBadRequest, `{"text":"Invalid data format","code":6}`)
		return
	}
	reply(w, http.StatusBadRequest, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, n))
}

func (f *fakeHEC) ackPoll(w http.ResponseWriter, r *http.Request, channel string) {
	if !f.ack {
		reply(w, http.StatusBadRequest, `{"text":"ACK is disabled","code":14}`)
		return
	}
	var q struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		reply(w, http.StatusBadRequest, `{"text":"Invalid data format","code":6}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	res := make([]string, 0, len(q.Acks))
	for _, id := range q.Acks {
		seen, known := f.acks[channel][id]
		done := known && f.ackAfter >= 0 && seen >= f.ackAfter
		if known {
			f.acks[channel][id] = seen + 1
		}
		if done {
			delete(f.acks[channel], id)
		}
		res = append(res, strconv.Quote(strconv.FormatInt(id, 10))+":"+strconv.FormatBool(done))
	}
	reply(w, http.StatusOK, `{"acks":{`+strings.Join(res, ",")+`}}`)
}

func (f *fakeHEC) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeHEC) indexedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.indexed)
}

func (f *fakeHEC) snapshot() (indexed []envelope, requests, polls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]envelope(nil), f.indexed...), f.requests, f.polls
}

func (f *fakeHEC) requestsSeen() ([]http.Header, [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.headers...), append([][]byte(nil), f.bodies...)
}

// handlerTransport serves requests in memory with an http.Handler, for
// tests inside a testing/synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
