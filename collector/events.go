package collector

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/schema"
)

// The collector's own events form two trails (EVENTS.md), one per stream:
// its lifecycle events in the events stream (correlation_uid Config.RunID)
// and its dead letters in the dead-letter stream (Config.RunID + "/dlq");
// metadata.sequence counts 1, 2, 3... in each. A dead letter the stream
// drops as a duplicate gives its number back, so a trail has no gaps
// unless a publish fails after the server stored it.

// reason says why a message went to the dead-letter stream; it is the last
// token of the dead letter's subject (sandtrail.dlq.<reason>) and, in
// capitals after DLQ_, its metadata.event_code.
type reason string

const (
	reasonSyntax        reason = "syntax"         // not one well-formed JSON object: garbage, truncated
	reasonSchema        reason = "schema"         // a rule the JSON Schema states: required, type, enum...
	reasonSemantic      reason = "semantic"       // a rule it cannot state: type_uid arithmetic, profiles...
	reasonUnknownClass  reason = "unknown_class"  // a class sandtrail does not know
	reasonTooLarge      reason = "too_large"      // over the validator's size limit
	reasonRejected      reason = "rejected"       // a sink's receiver refused it for good
	reasonMaxDeliveries reason = "max_deliveries" // delivered MaxDeliver times without success
)

var reasons = []reason{reasonSyntax, reasonSchema, reasonSemantic, reasonUnknownClass, reasonTooLarge, reasonRejected, reasonMaxDeliveries}

func (r reason) eventCode() string { return "DLQ_" + strings.ToUpper(string(r)) }

// perSink reports whether the reason depends on the sink: a message every
// sink refuses (invalid) gets one dead letter whichever consumer saw it.
func (r reason) perSink() bool { return r == reasonRejected || r == reasonMaxDeliveries }

// invalid describes a message the validator refused: the reason, the
// status_code (the validator's error kind) and where the problem is.
func invalid(err error, data []byte, limit int) (why reason, code, where string) {
	size := len(data)
	why, code = reasonSyntax, "SYNTAX"
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		code = strings.ToUpper(ve.Kind.String())
		path := ve.Path
		if path == "" {
			path = "/"
		}
		where = fmt.Sprintf("path %s, byte %d", path, ve.Offset)
		switch ve.Kind {
		case schema.KindSchema:
			why = reasonSchema
		case schema.KindSemantic:
			why = reasonSemantic
		}
	}
	switch {
	case errors.Is(err, schema.ErrUnknownClass):
		why = reasonUnknownClass
	case size > limit:
		why = reasonTooLarge
	case !json.Valid(data):
		// Garbage may be a schema error to the validator ("an event
		// must be a JSON object"); to an operator it is not JSON.
		why, code = reasonSyntax, "SYNTAX"
	}
	return why, code, where
}

// Headers on every dead letter, so tools can find the original without
// decoding the event.
const (
	HeaderStream    = "Sandtrail-Stream"
	HeaderStreamSeq = "Sandtrail-Stream-Seq"
	HeaderSubject   = "Sandtrail-Subject"
	HeaderSink      = "Sandtrail-Sink"
	HeaderReason    = "Sandtrail-Reason"
)

// deadLetter is a message the collector gives up on.
type deadLetter struct {
	reason    reason
	code      string // status_code; default the reason in capitals
	where     string // where in the message the problem is, if known
	message   string // the validator's message, or the sink's reason
	sink      string
	data      []byte
	subject   string
	stream    string
	seq       uint64
	delivered uint64
	stored    time.Time // when the stream stored the original
	origUID   string    // metadata.uid of the original, when it has one
}

// msgID is the Nats-Msg-Id: redeliveries of one message give one dead letter.
func (d *deadLetter) msgID() string {
	if d.reason.perSink() {
		return "dlq-" + string(d.reason) + "-" + d.sink + "-" + d.stream + "-" + strconv.FormatUint(d.seq, 10)
	}
	return "dlq-" + string(d.reason) + "-" + d.stream + "-" + strconv.FormatUint(d.seq, 10)
}

// uid is a UUIDv7 derived from the message id and the original's store
// time, so that a dead letter published twice (after the duplicate window)
// carries the same metadata.uid and every SIEM drops the copy.
func (d *deadLetter) uid() string {
	sum := sha256.Sum256([]byte(d.msgID()))
	var u uuid.UUID
	ms := uint64(d.stored.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	copy(u[6:], sum[:10])
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return u.String()
}

// maxMessage bounds the message and status_detail of a dead letter: a
// sink's reason may quote a whole HTTP response.
const maxMessage = 4 << 10

// trail numbers, chains (package chain) and publishes the collector's own
// events of one run: its lifecycle on the events stream, its dead letters
// on the dead-letter stream, each a run of its own so that each stream
// holds complete trails.
type trail struct {
	cfg    *Config
	run    string
	mu     sync.Mutex
	seq    int
	sealer *chain.Sealer
}

func newTrail(cfg *Config, run string) (*trail, error) {
	s, err := chain.NewSealer(run, cfg.Signer)
	if err != nil {
		return nil, err
	}
	return &trail{cfg: cfg, run: run, sealer: s}, nil
}

// stamp fills the envelope of one of the collector's events.
func (t *trail) stamp(ev schema.Event, uid, code, subject string, seq int) {
	b := ev.EventBase()
	b.Time = t.cfg.Now().UnixMilli()
	b.Metadata = &schema.Metadata{
		Version:        schema.Version,
		UID:            uid,
		Product:        &schema.Product{Name: "sandtrail", VendorName: "sandtrail", Version: t.cfg.ProductVersion},
		CorrelationUID: t.run,
		Sequence:       schema.Ptr(seq),
		EventCode:      code,
		LogName:        subject,
		Profiles:       []string{"host", "security_control", "linux/linux_users"},
		Extensions:     []schema.Extension{{Name: "linux", UID: "1", Version: schema.Version}},
	}
}

// publish numbers, encodes, validates and publishes one event, waiting
// for the stream's acknowledgement. build fills the event for a sequence
// number. It returns the event's stream sequence.
func (t *trail) publish(ctx context.Context, stream, subject, msgID string, hdr nats.Header, final bool, build func(seq int) (schema.Event, error)) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev, err := build(t.seq + 1)
	if err != nil {
		return 0, err
	}
	encoded, err := ev.AppendJSON(nil)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", ev.ClassName(), err)
	}
	state := t.sealer.State()
	data, err := t.sealer.Seal(encoded, final)
	if err != nil {
		return 0, fmt.Errorf("chain %s: %w", ev.ClassName(), err)
	}
	if err := schema.Validate(data); err != nil {
		t.sealer.Restore(state)
		return 0, fmt.Errorf("validate %s: %w", ev.ClassName(), err)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: hdr}
	ack, err := t.cfg.JetStream.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(stream))
	if err != nil {
		// Stored or not, we cannot tell: keep the number used, a gap
		// is better than two events with one number.
		t.seq++
		return 0, fmt.Errorf("publish %s: %w", subject, err)
	}
	if ack.Duplicate {
		t.sealer.Restore(state) // the stream already holds this one: the number is not used
	} else {
		t.seq++
	}
	return ack.Sequence, nil
}

// lifecycle publishes an Application Lifecycle event of the collector and
// returns its subject and stream sequence.
func (t *trail) lifecycle(ctx context.Context, activity schema.ApplicationLifecycleActivityID, code, msg string) (string, uint64, error) {
	host := ""
	if t.cfg.Device != nil {
		host = t.cfg.Device.Hostname
	}
	subject := bus.EventSubject(6002, int(schema.SeverityIDInformational), host)
	u, err := uuid.NewV7()
	if err != nil {
		return "", 0, err
	}
	final := activity == schema.ApplicationLifecycleActivityIDStop // the collector's last event closes its trail
	seq, err := t.publish(ctx, t.cfg.Stream, subject, u.String(), nil, final, func(seq int) (schema.Event, error) {
		ev := schema.NewApplicationLifecycle(activity)
		ev.SeverityID = schema.SeverityIDInformational
		ev.StatusID = schema.ApplicationLifecycleStatusIDSuccess
		ev.Message = msg
		ev.App = &schema.Product{Name: "sandtrail collector", VendorName: "sandtrail", Version: t.cfg.ProductVersion}
		ev.Actor = t.cfg.Actor
		ev.Device = t.cfg.Device
		t.stamp(ev, u.String(), code, subject, seq)
		return ev, nil
	})
	return subject, seq, err
}

// deadLetter publishes d to the dead-letter stream as an Application Error
// (6008), activity Translation Error.
func (t *trail) deadLetter(ctx context.Context, d *deadLetter) error {
	subject := bus.DLQSubject(string(d.reason))
	hdr := nats.Header{}
	hdr.Set(HeaderStream, d.stream)
	hdr.Set(HeaderStreamSeq, strconv.FormatUint(d.seq, 10))
	hdr.Set(HeaderSubject, d.subject)
	hdr.Set(HeaderReason, string(d.reason))
	if d.sink != "" {
		hdr.Set(HeaderSink, d.sink)
	}
	uid := d.uid()
	_, err := t.publish(ctx, t.cfg.DLQStream, subject, d.msgID(), hdr, false, func(seq int) (schema.Event, error) {
		limit := t.cfg.RawDataMax
		// The limits make a dead letter far smaller than 1 MiB; halving is
		// the safety net should a future field make it larger.
		for range 4 {
			ev := t.buildDeadLetter(d, uid, subject, seq, limit)
			data, err := ev.AppendJSON(nil)
			if err != nil {
				return nil, fmt.Errorf("encode dead letter: %w", err)
			}
			if len(data) < 1<<20 {
				return ev, nil
			}
			limit /= 2
		}
		return nil, fmt.Errorf("dead letter of %s seq %d stays over 1 MiB", d.stream, d.seq)
	})
	return err
}

func (t *trail) buildDeadLetter(d *deadLetter, uid, subject string, seq, limit int) *schema.ApplicationError {
	ev := schema.NewApplicationError(schema.ApplicationErrorActivityIDTranslationError)
	ev.SeverityID = schema.SeverityIDMedium
	ev.StatusID = schema.ApplicationErrorStatusIDFailure
	ev.StatusCode = d.code
	if ev.StatusCode == "" {
		ev.StatusCode = strings.ToUpper(string(d.reason))
	}
	ev.Message = clip(d.message, maxMessage)
	detail := ""
	if d.where != "" {
		detail = d.where + "; "
	}
	detail += fmt.Sprintf("%s: stream %s seq %d, subject %q, delivered %d times", describeReason(d.reason), d.stream, d.seq, d.subject, d.delivered)
	if d.sink != "" {
		detail += ", sink " + d.sink
	}
	ev.StatusDetail = clip(detail, maxMessage)
	raw, truncated, encoded := rawData(d.data, limit)
	ev.RawData = raw
	ev.RawDataSize = schema.Ptr(int64(len(d.data)))
	sum := sha256.Sum256(d.data)
	ev.RawDataHash = &schema.Fingerprint{AlgorithmID: schema.FingerprintAlgorithmIDSHA256, Value: hex.EncodeToString(sum[:])}
	if encoded {
		// OCSF has no attribute for the encoding of raw_data.
		ev.Unmapped = map[string]any{"raw_data_encoding": "base64"}
	}
	ev.Actor = t.cfg.Actor
	ev.Device = t.cfg.Device
	t.stamp(ev, uid, d.reason.eventCode(), subject, seq)
	if truncated {
		ev.Metadata.IsTruncated = schema.Ptr(true)
	}
	ev.Metadata.OriginalEventUID = d.origUID
	if !d.stored.IsZero() {
		ev.Metadata.LoggedTime = d.stored.UnixMilli()
	}
	return ev
}

func describeReason(r reason) string {
	switch r {
	case reasonSyntax:
		return "not a well-formed JSON event"
	case reasonSchema, reasonSemantic:
		return "the event breaks sandtrail's schema"
	case reasonUnknownClass:
		return "the event is of a class sandtrail does not know"
	case reasonTooLarge:
		return "the event is over the size limit"
	case reasonRejected:
		return "the sink's receiver rejected the event for good"
	case reasonMaxDeliveries:
		return "the event reached its maximum number of deliveries"
	}
	return string(r)
}

// rawData returns what raw_data holds for the original bytes b: the bytes
// themselves, cut to at most limit bytes on a rune boundary, or their
// base64 when they are not valid UTF-8 (a JSON string cannot carry them).
func rawData(b []byte, limit int) (raw string, truncated, encoded bool) {
	if utf8.Valid(b) {
		if len(b) <= limit {
			return string(b), false, false
		}
		cut := limit
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return string(b[:cut]), true, false
	}
	n := min(len(b), limit/4*3) // base64 grows 3 bytes to 4
	return base64.StdEncoding.EncodeToString(b[:n]), n < len(b), true
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut, and
// makes it valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const more = "..."
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}
