// Package elastic is the collector's sink for Elasticsearch and OpenSearch:
// batches of OCSF events are sent with the bulk API (POST /_bulk,
// application/x-ndjson) as create actions into a data stream, default
// logs-ocsf.sandtrail-default.
//
// Each event becomes two lines:
//
//	{"create":{"_index":"logs-ocsf.sandtrail-default","_id":"<metadata.uid>"}}
//	{"@timestamp":"2025-11-26T15:13:21.000Z", ...the OCSF event...}
//
// The document is the event's JSON with exactly one change, and only with
// [Config].AddTimestamp (the default): "@timestamp", the event's OCSF time in
// RFC 3339 UTC with milliseconds, is inserted as the first member, because a
// data stream rejects a document without it. The event is otherwise
// unchanged but for insignificant whitespace: NDJSON needs each document on
// one line, so it is compacted.
//
// # Delivery guarantees
//
// The _id is the event's metadata.uid and the action is create, so a
// redelivered event is refused with 409 and counted Delivered: the index
// holds each event once however often the collector retries. Every item of
// every response is checked:
//
//	item 200/201                       Delivered
//	item 409 (already exists)          Delivered
//	item 429, 5xx                      Retry
//	item 401, 403, 404, 408            Retry: security, a read-only or missing
//	                                   index are the cluster's state, not the
//	                                   document's
//	item 400 and other 4xx             Reject, with the item's error type and
//	                                   reason (dead letter)
//	request 2xx, items don't match     Retry
//	request 413 (too large)            split in halves; a lone event is Reject
//	request 429, 503                   Retry, honouring Retry-After
//	request 401, 403                   Retry, with a reason naming the
//	                                   credentials
//	request 400, other statuses        Retry: a refused request says nothing
//	                                   about the documents
//	network error, timeout, cancel     Retry
package elastic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// ErrClosed is the cause of a Write cut short by Close, and the reason of
// the Retry outcomes of a Write after Close.
var ErrClosed = errors.New("elastic: sink closed")

// Sink sends events to one cluster's bulk API. Its methods are safe for
// concurrent use, though the collector calls Write from one goroutine at a
// time.
type Sink struct {
	cfg    Config           // with defaults applied
	addTS  bool             // *cfg.AddTimestamp, read once: the caller keeps its pointer
	bulk   string           // the _bulk URL
	auth   transport.Secret // the Authorization header value, or empty
	client *http.Client

	writes transport.Writes
}

var _ collector.Sink = (*Sink)(nil)

// New validates cfg, reads the password or API key and returns a Sink. It
// starts nothing and sends nothing: the first request is the first Write's.
func New(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	bulk, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("elastic: config: %w", err)
	}
	var auth transport.Secret
	switch {
	case cfg.Username != "":
		pw, err := transport.ReadSecret(cfg.PasswordFile, cfg.PasswordEnv, cfg.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("elastic: password: %w", err)
		}
		auth = transport.Secret("Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+pw)))
	case cfg.APIKeyFile != "" || cfg.APIKeyEnv != "":
		key, err := transport.ReadSecret(cfg.APIKeyFile, cfg.APIKeyEnv, cfg.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("elastic: api key: %w", err)
		}
		auth = transport.Secret("ApiKey " + key)
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("elastic: config: %w", err)
	}
	return &Sink{
		cfg:    cfg,
		addTS:  *cfg.AddTimestamp,
		bulk:   bulk,
		auth:   auth,
		client: transport.NewClient(tlsCfg),
	}, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Sink) Config() Config {
	c := s.cfg
	c.AddTimestamp = new(s.addTS)
	return c
}

// String describes the sink by its configuration, without secrets.
func (s *Sink) String() string { return s.cfg.String() }

// GoString is String, so %#v cannot print a secret either.
func (s *Sink) GoString() string { return s.cfg.String() }

// LogValue is the configuration's, without secrets.
func (s *Sink) LogValue() slog.Value { return s.cfg.LogValue() }

// Write sends the batch in one bulk request (more when the cluster finds it
// too large) and returns one outcome per event, in order. See the package
// documentation for how responses become outcomes. It returns when every
// event has its verdict, or when ctx ends (what is unconfirmed is then
// Retry).
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	if len(batch) == 0 {
		return []collector.Outcome{}
	}
	ctx, end, ok := s.writes.Begin(ctx)
	if !ok {
		return collector.RetryAll(len(batch), ErrClosed.Error(), 0)
	}
	defer end()

	w := &write{s: s, out: make([]collector.Outcome, len(batch)), lines: make([][]byte, len(batch))}
	idx := make([]int, 0, len(batch))
	for i := range batch {
		l, err := s.lines(&batch[i])
		if err != nil {
			w.out[i] = collector.Outcome{Status: collector.Reject, Reason: "elastic: " + err.Error()}
			continue
		}
		w.lines[i] = l
		idx = append(idx, i)
	}
	if len(idx) > 0 {
		w.post(ctx, idx)
	}
	return w.out
}

// Close marks the sink closed, waits until ctx ends for a running Write to
// finish (cancelling it then, its events becoming Retry), and releases the
// idle connections. It is idempotent; Write after Close marks every event
// Retry. The sink buffers nothing, so there is nothing else to flush.
func (s *Sink) Close(ctx context.Context) error {
	err := s.writes.Close(ctx, ErrClosed)
	s.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("elastic: close: write cut short: %w", err)
	}
	return nil
}

// action is a bulk action line.
type action struct {
	Create struct {
		Index string `json:"_index"`
		ID    string `json:"_id,omitempty"`
	} `json:"create"`
}

// lines encodes e's action and document lines, each newline-terminated.
func (s *Sink) lines(e *collector.Event) ([]byte, error) {
	var a action
	a.Create.Index, a.Create.ID = s.cfg.Index, e.UID
	head, err := json.Marshal(&a)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.UID, err)
	}
	var doc bytes.Buffer
	if err := json.Compact(&doc, e.Data); err != nil {
		return nil, fmt.Errorf("event %s is not valid JSON: %w", e.UID, err)
	}
	d := doc.Bytes()
	if len(d) == 0 || d[0] != '{' {
		return nil, fmt.Errorf("event %s is not a JSON object", e.UID)
	}
	buf := make([]byte, 0, len(head)+len(d)+48)
	buf = append(buf, head...)
	buf = append(buf, '\n')
	if s.addTS {
		buf = append(buf, `{"@timestamp":"`...)
		buf = time.UnixMilli(e.Time).UTC().AppendFormat(buf, Timestamp)
		buf = append(buf, '"')
		if len(d) > 2 { // not {}
			buf = append(buf, ',')
		}
		d = d[1:]
	}
	buf = append(buf, d...)
	return append(buf, '\n'), nil
}

// Timestamp is the layout of the @timestamp the sink adds: RFC 3339 in UTC
// with exactly three fractional digits.
const Timestamp = "2006-01-02T15:04:05.000Z07:00"
