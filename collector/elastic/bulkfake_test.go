package elastic_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// fakeES is an httptest fake of the Elasticsearch bulk API for what
// VictoriaLogs' _bulk does not do (it reports every item 201, never a
// per-item error, and keeps duplicates). It follows the documented
// protocol; the facts it relies on:
//
//   - POST /_bulk with Content-Type application/x-ndjson: pairs of lines,
//     an action ({"create":{"_index":...,"_id":...}}) then the document;
//     the body ends with a newline. A malformed body is a whole-request 400
//     (parse_exception / illegal_argument_exception).
//   - The response is {"took":N,"errors":bool,"items":[...]}, one item per
//     action in request order, keyed by the action name, each with
//     "status" and, when it failed, "error":{"type","reason"}.
//   - create with an _id that exists: item 409 version_conflict_engine_exception.
//   - A data stream accepts only create (other op types: item 400) and
//     needs @timestamp (item 400 "data stream timestamp field [@timestamp]
//     is missing").
//   - A document the mapping cannot take: item 400 (document_parsing_exception
//     in 8.x, mapper_parsing_exception before); a full write queue: item 429
//     es_rejected_execution_exception.
//   - Without valid credentials: whole-request 401 security_exception; a
//     body over http.max_content_length: whole-request 413.
//
// Scripted failures: a document containing "poison" cannot be mapped (400),
// "throttle" meets a full queue (429), "unavailable" a missing primary
// shard (503 unavailable_shards_exception).
type fakeES struct {
	auth string // the Authorization header it requires; "" for none

	mu         sync.Mutex
	docs       map[string][]byte // _index/_id -> document
	order      []string          // keys in creation order
	autoID     int
	requests   int
	headers    []http.Header
	status     int    // when non-zero, the whole-request answer
	retryAfter string // with status
	maxBytes   int    // when non-zero, larger bodies get 413
}

func newFakeES() *fakeES { return &fakeES{docs: map[string][]byte{}} }

func (f *fakeES) start() *httptest.Server { return httptest.NewServer(f) }

// setStatus makes every request get status (0: back to normal).
func (f *fakeES) setStatus(status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.retryAfter = status, retryAfter
}

func jsonReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func errorBody(status int, typ, reason string) string {
	return fmt.Sprintf(`{"error":{"root_cause":[{"type":%q,"reason":%q}],"type":%q,"reason":%q},"status":%d}`, typ, reason, typ, reason, status)
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.headers = append(f.headers, r.Header.Clone())
	if f.status != 0 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		jsonReply(w, f.status, errorBody(f.status, "es_rejected_execution_exception", "rejected execution of coordinating operation"))
		return
	}
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		jsonReply(w, http.StatusUnauthorized, errorBody(401, "security_exception", "missing authentication credentials for REST request [/_bulk]"))
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/_bulk" {
		jsonReply(w, http.StatusNotFound, errorBody(404, "resource_not_found_exception", "no handler for "+r.URL.Path))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		jsonReply(w, http.StatusNotAcceptable, errorBody(406, "media_type_header_exception", "Content-Type header ["+ct+"] is not supported"))
		return
	}
	if f.maxBytes > 0 && len(body) > f.maxBytes {
		jsonReply(w, http.StatusRequestEntityTooLarge, "")
		return
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		jsonReply(w, http.StatusBadRequest, errorBody(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"))
		return
	}
	var items []string
	errors := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 || !sc.Scan() {
			jsonReply(w, http.StatusBadRequest, errorBody(400, "parse_exception", "malformed action/metadata line"))
			return
		}
		doc := append([]byte(nil), sc.Bytes()...)
		for op, meta := range action {
			status, errJSON := f.apply(op, meta.Index, meta.ID, doc)
			if status >= 300 {
				errors = true
			}
			item := fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":%d`, op, meta.Index, meta.ID, status)
			if errJSON != "" {
				item += `,"error":` + errJSON
			} else {
				item += `,"result":"created","_version":1`
			}
			items = append(items, item+"}}")
		}
	}
	jsonReply(w, http.StatusOK, fmt.Sprintf(`{"took":3,"errors":%t,"items":[%s]}`, errors, strings.Join(items, ",")))
}

// apply performs one action and returns the item status and error object.
func (f *fakeES) apply(op, index, id string, doc []byte) (int, string) {
	e := func(typ, reason string) string {
		return fmt.Sprintf(`{"type":%q,"reason":%q,"index":%q}`, typ, reason, index)
	}
	var m map[string]any
	switch {
	case op != "create":
		return 400, e("illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
	case json.Unmarshal(doc, &m) != nil:
		return 400, e("document_parsing_exception", "[1:1] failed to parse")
	case m["@timestamp"] == nil:
		return 400, e("document_parsing_exception", "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing")
	case bytes.Contains(doc, []byte("poison")):
		return 400, e("document_parsing_exception", `[1:42] failed to parse field [message] of type [long] in document with id '`+id+`'`)
	case bytes.Contains(doc, []byte("throttle")):
		return 429, e("es_rejected_execution_exception", "rejected execution of primary operation [queue capacity = 200]")
	case bytes.Contains(doc, []byte("unavailable")):
		return 503, e("unavailable_shards_exception", "primary shard is not active")
	}
	if id == "" {
		f.autoID++
		id = fmt.Sprintf("auto-%d", f.autoID)
	}
	key := index + "/" + id
	if _, dup := f.docs[key]; dup {
		return 409, e("version_conflict_engine_exception", "["+id+"]: version conflict, document already exists (current version [1])")
	}
	f.docs[key] = doc
	f.order = append(f.order, key)
	return 201, ""
}

// stored returns the documents in creation order, keyed index/id.
func (f *fakeES) stored() (keys []string, docs map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	docs = make(map[string][]byte, len(f.docs))
	for k, v := range f.docs {
		docs[k] = v
	}
	return append([]string(nil), f.order...), docs
}

func (f *fakeES) seen() (requests int, headers []http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, append([]http.Header(nil), f.headers...)
}
