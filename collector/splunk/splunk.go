// Package splunk is the collector's sink for the Splunk HTTP Event
// Collector (HEC): batches of OCSF events are posted to
// /services/collector/event as concatenated JSON envelopes, optionally
// gzipped, optionally confirmed by indexer acknowledgement.
//
// Each event becomes one envelope:
//
//	{"time":1764170001.123,"host":"<device.hostname>","source":"sandtrail",
//	 "sourcetype":"ocsf:compliance_finding","index":"<index>",
//	 "event":{...the OCSF event...},
//	 "fields":{"class_uid":"2003","severity_id":"1","run_id":"...","event_uid":"..."}}
//
// time is the OCSF time in seconds with a millisecond fraction; sourcetype is
// "ocsf:" and the class name in snake case (Splunk's OCSF add-on keys on the
// ocsf: prefix); event is the event's JSON unchanged but for insignificant
// whitespace (compacted); fields are indexed fields, strings as HEC expects,
// for fast filtering on class, severity, run and event uid.
//
// # Delivery guarantees
//
// Write reports an event Delivered only after HEC answered 2xx with code 0
// for the request that carried it, and, with [AckConfig].Enabled, only after
// /services/collector/ack reported that request's ackId committed. Splunk
// has no idempotency key: an event redelivered after a lost response or an
// ack timeout is indexed twice (at-least-once), and so may be the
// neighbours of a refused event, resent while it is isolated; event_uid
// identifies the copies. Every response is classified:
//
//	HTTP 2xx, code 0                   Delivered (or, with acks, once acked)
//	HTTP 2xx without ackId, acks on    Retry: the token has acknowledgement off
//	ack not seen within Ack.Timeout    Retry
//	400, code 5/6/12/13/15 (the data)  isolate: the event HEC names by
//	                                   invalid-event-number is sent alone and
//	                                   the rest together, else the batch is
//	                                   split in halves; an event refused alone
//	                                   is Reject (dead letter)
//	413 request too large              split in halves; a lone event is Reject
//	400, any other code (index,        Retry: configuration, not data; a valid
//	  channel, ack disabled...)        event must never be dead-lettered
//	401, 403 (token)                   Retry, with a reason naming the token
//	429, 503                           Retry, honouring Retry-After
//	other 5xx and statuses             Retry
//	network error, timeout, cancel     Retry
package splunk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/internal/transport"
)

// ErrClosed is the cause of a Write cut short by Close, and the reason of
// the Retry outcomes of a Write after Close.
var ErrClosed = errors.New("splunk: sink closed")

// Sink posts events to one HEC endpoint. Its methods are safe for concurrent
// use, though the collector calls Write from one goroutine at a time.
type Sink struct {
	cfg    Config // with defaults applied and the channel chosen
	ep     endpoints
	token  *transport.Secret // a pointer, so even reflection-based printing shows an address
	client *http.Client

	writes transport.Writes
}

var _ collector.Sink = (*Sink)(nil)

// New validates cfg, reads the token and returns a Sink. It starts nothing
// and sends nothing: the first request is the first Write's.
func New(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	ep, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("splunk: config: %w", err)
	}
	tok, err := transport.ReadSecret(cfg.TokenFile, cfg.TokenEnv, cfg.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("splunk: token: %w", err)
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("splunk: config: %w", err)
	}
	if cfg.Ack.Enabled && cfg.Ack.Channel == "" {
		cfg.Ack.Channel = uuid.NewString()
	}
	return &Sink{
		cfg:    cfg,
		ep:     ep,
		token:  new(transport.Secret(tok)),
		client: transport.NewClient(tlsCfg),
	}, nil
}

// Config returns the configuration in effect: defaults applied, the ack
// channel chosen.
func (s *Sink) Config() Config { return s.cfg }

// String describes the sink by its configuration, without the token.
func (s *Sink) String() string { return s.cfg.String() }

// GoString is String, so %#v cannot print the token either.
func (s *Sink) GoString() string { return s.cfg.String() }

// LogValue is the configuration's, without the token.
func (s *Sink) LogValue() slog.Value { return s.cfg.LogValue() }

// Write posts the batch and returns one outcome per event, in order. See
// the package documentation for how responses become outcomes. It returns
// when every event has its verdict, or when ctx ends (what is unconfirmed is
// then Retry).
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	if len(batch) == 0 {
		return []collector.Outcome{}
	}
	ctx, end, ok := s.writes.Begin(ctx)
	if !ok {
		return collector.RetryAll(len(batch), ErrClosed.Error(), 0)
	}
	defer end()

	w := &write{s: s, out: make([]collector.Outcome, len(batch)), envs: make([][]byte, len(batch))}
	idx := make([]int, 0, len(batch))
	for i := range batch {
		env, err := s.envelope(&batch[i])
		if err != nil {
			w.out[i] = collector.Outcome{Status: collector.Reject, Reason: "splunk: " + err.Error()}
			continue
		}
		w.envs[i] = env
		idx = append(idx, i)
	}
	if len(idx) > 0 {
		w.post(ctx, idx)
		if s.cfg.Ack.Enabled {
			w.awaitAcks(ctx)
		}
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
		return fmt.Errorf("splunk: close: write cut short: %w", err)
	}
	return nil
}

// envelope is one HEC event.
type envelope struct {
	Time       json.Number     `json:"time,omitempty"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source,omitempty"`
	Sourcetype string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
	Fields     indexedFields   `json:"fields"`
}

// indexedFields are HEC indexed fields; their values are strings.
type indexedFields struct {
	ClassUID   string `json:"class_uid"`
	SeverityID string `json:"severity_id"`
	RunID      string `json:"run_id,omitempty"`
	EventUID   string `json:"event_uid,omitempty"`
}

// envelope encodes e's envelope, newline-terminated. The event's bytes are
// compacted (whitespace only) and not HTML-escaped: the event is unchanged.
func (s *Sink) envelope(e *collector.Event) ([]byte, error) {
	if b := bytes.TrimLeft(e.Data, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("event %s is not a JSON object", e.UID)
	}
	env := envelope{
		Host:       s.cfg.Host,
		Source:     s.cfg.Source,
		Sourcetype: s.cfg.Sourcetype,
		Index:      s.cfg.Index,
		Event:      e.Data,
		Fields: indexedFields{
			ClassUID:   strconv.Itoa(e.ClassUID),
			SeverityID: strconv.Itoa(e.SeverityID),
			RunID:      e.RunID,
			EventUID:   e.UID,
		},
	}
	if e.Time != 0 {
		env.Time = json.Number(strconv.FormatFloat(float64(e.Time)/1000, 'f', 3, 64))
	}
	if env.Host == "" {
		env.Host = e.Host
	}
	if env.Sourcetype == "" {
		env.Sourcetype = Sourcetype(e.ClassName, e.ClassUID)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&env); err != nil {
		return nil, fmt.Errorf("event %s: %w", e.UID, err)
	}
	return buf.Bytes(), nil
}

// Sourcetype is the default sourcetype of an event: "ocsf:" and the class
// name in snake case ("Compliance Finding" -> "ocsf:compliance_finding"), or
// "ocsf:class_<uid>" when the name is empty.
func Sourcetype(className string, classUID int) string {
	var b strings.Builder
	b.WriteString("ocsf:")
	gap := false
	for _, r := range strings.ToLower(className) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			gap = true
			continue
		}
		if gap && b.Len() > len("ocsf:") {
			b.WriteByte('_')
		}
		gap = false
		b.WriteRune(r)
	}
	if b.Len() == len("ocsf:") {
		return "ocsf:class_" + strconv.Itoa(classUID)
	}
	return b.String()
}
