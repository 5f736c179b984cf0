package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ErrFinal: the run's final event was sealed; a Sealer seals nothing after
// it.
var ErrFinal = errors.New("chain: the run's final event is already sealed")

// Sealer stamps the integrity link into the events of one run, in order.
// It is not safe for concurrent use: its caller serialises Seal (the
// emitter's Trail holds its lock). A Sealer keeps no reference to the
// events it is given.
type Sealer struct {
	run    string
	signer *Signer
	st     State
	c      canonicalizer
	cap    captured
	canon  []byte // canonical form scratch
	link   []byte // link scratch
}

// State is where a Sealer stands: the sequence number and hash of the last
// event it sealed. Save it with [Sealer.State] before sealing a batch and
// give it back to [Sealer.Restore] when the batch is abandoned, so the
// sequence numbers and the chain stay without gaps.
type State struct {
	Seq   int64    // sequence number of the last sealed event; 0 before the first
	Head  [32]byte // its hash; all zeros before the first
	Final bool     // whether it was the run's final event
}

// NewSealer returns the Sealer of run, which must equal the events'
// metadata.correlation_uid. With a signer, the final event is signed;
// signer may be nil.
func NewSealer(run string, signer *Signer) (*Sealer, error) {
	if run == "" || !utf8.ValidString(run) {
		return nil, fmt.Errorf("chain: run id %q: want a non-empty UTF-8 string", run)
	}
	return &Sealer{run: run, signer: signer}, nil
}

// Run returns the run id.
func (s *Sealer) Run() string { return s.run }

// State returns the Sealer's position.
func (s *Sealer) State() State { return s.st }

// Restore moves the Sealer back (or forward, when resuming a run) to st.
func (s *Sealer) Restore(st State) { s.st = st }

// Seal returns a copy of the encoded event with its integrity link set:
// unmapped.sandtrail_integrity is inserted (into an existing unmapped
// object, or as a new last member of the event, so class_uid stays first)
// or replaced, and its hash computed; with final, the link also says
// final and count, and is signed when the Sealer has a signer.
//
// The event's metadata.sequence must be the next sequence number (State().Seq+1)
// and its metadata.correlation_uid the Sealer's run: Seal refuses
// anything else, and any JSON that RFC 8785 cannot canonicalize. On error
// the Sealer's state is unchanged. After a final event, Seal returns
// ErrFinal.
func (s *Sealer) Seal(event []byte, final bool) ([]byte, error) {
	return s.AppendSeal(make([]byte, 0, len(event)+320), event, final)
}

// AppendSeal is Seal appending the sealed event to dst; dst's spare
// capacity must not overlap event. On error it returns dst unchanged.
func (s *Sealer) AppendSeal(dst, event []byte, final bool) ([]byte, error) {
	if s.st.Final {
		return dst, ErrFinal
	}
	seq := s.st.Seq + 1
	l := s.link[:0]
	l = append(l, `{"v":1,"alg":"sha256","run":`...)
	l = appendString(l, s.run)
	l = append(l, `,"seq":`...)
	l = strconv.AppendInt(l, seq, 10)
	l = append(l, `,"prev":"`...)
	l = hex.AppendEncode(l, s.st.Head[:])
	l = append(l, '"')
	if final {
		l = append(l, `,"final":true,"count":`...)
		l = strconv.AppendInt(l, seq, 10)
		if s.signer != nil {
			l = append(l, `,"key_id":"`...)
			l = append(l, s.signer.KeyID()...)
			l = append(l, '"')
		}
	}
	l = append(l, '}')
	s.link = l

	base := len(dst)
	// Room for the event, the link with its member name, and the hash and
	// signature inserted below: one allocation at most.
	dst = slices.Grow(dst, len(event)+len(l)+len(`,"unmapped":{"`+LinkMember+`":}`)+160)
	out, closeAt, err := spliceLink(dst, event, l)
	if err != nil {
		return dst, err
	}
	s.cap.reset()
	s.canon, err = s.c.canonical(s.canon[:0], out[base:], true, &s.cap)
	if err != nil {
		return dst, err
	}
	if n, ok := s.cap.int(s.cap.md[mSeq]); !ok || n != seq {
		return dst, fmt.Errorf("chain: seal run %s: event metadata.sequence is %s, want %d", s.run, describe(&s.cap, s.cap.md[mSeq]), seq)
	}
	if r, ok := s.cap.str(s.cap.md[mRun]); !ok || r != s.run {
		return dst, fmt.Errorf("chain: seal run %s: event metadata.correlation_uid is %s", s.run, describe(&s.cap, s.cap.md[mRun]))
	}
	head := sha256.Sum256(s.canon)

	// Insert hash (and sig) as the link's last members.
	var tail [160]byte
	t := append(tail[:0], `,"hash":"`...)
	t = hex.AppendEncode(t, head[:])
	t = append(t, '"')
	if final && s.signer != nil {
		t = append(t, `,"sig":"`...)
		t = base64.StdEncoding.AppendEncode(t, s.signer.Sign(s.run, seq, head))
		t = append(t, '"')
	}
	out = append(out, t...) // grow by len(t), then shift the rest
	copy(out[closeAt+len(t):], out[closeAt:len(out)-len(t)])
	copy(out[closeAt:], t)

	s.st = State{Seq: seq, Head: head, Final: final}
	return out, nil
}

func describe(c *captured, s span) string {
	if !s.set {
		return "missing"
	}
	return string(c.raw(s))
}

// spliceLink appends event to dst with unmapped.sandtrail_integrity set to
// link, and returns the buffer and the offset in it of link's closing
// brace. It checks the structure it walks; the caller canonicalizes the
// result, which checks the rest.
func spliceLink(dst, event, link []byte) ([]byte, int, error) {
	root := skipWS(event, 0)
	if root >= len(event) || event[root] != '{' {
		return dst, 0, fmt.Errorf("%w: the event is not a JSON object", ErrNotCanonicalizable)
	}
	uv0, uv1, rootClose, rootN, err := findMember(event, root, "unmapped")
	if err != nil {
		return dst, 0, err
	}
	if p := skipWS(event, rootClose+1); p != len(event) {
		return dst, 0, fmt.Errorf("%w: offset %d: data after the event", ErrNotCanonicalizable, p)
	}
	if uv0 < 0 {
		// No unmapped: add it as the event's last member.
		dst = append(dst, event[:rootClose]...)
		if rootN > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"unmapped":{"`+LinkMember+`":`...)
		dst = append(dst, link...)
		closeAt := len(dst) - 1
		dst = append(dst, '}')
		dst = append(dst, event[rootClose:]...)
		return dst, closeAt, nil
	}
	if event[uv0] != '{' {
		return dst, 0, fmt.Errorf("%w: offset %d: unmapped is not an object", ErrNotCanonicalizable, uv0)
	}
	lv0, lv1, unClose, unN, err := findMember(event[:uv1], uv0, LinkMember)
	if err != nil {
		return dst, 0, err
	}
	if lv0 >= 0 {
		// Replace the existing link.
		dst = append(dst, event[:lv0]...)
		dst = append(dst, link...)
		closeAt := len(dst) - 1
		dst = append(dst, event[lv1:]...)
		return dst, closeAt, nil
	}
	dst = append(dst, event[:unClose]...)
	if unN > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"`+LinkMember+`":`...)
	dst = append(dst, link...)
	closeAt := len(dst) - 1
	dst = append(dst, event[unClose:]...)
	return dst, closeAt, nil
}

// findMember scans the object starting at b[obj] and returns the span of
// the value of member key (v0 = -1 when absent), the offset of the
// object's closing brace and its number of members.
func findMember(b []byte, obj int, key string) (v0, v1, closeAt, n int, err error) {
	v0, v1 = -1, -1
	p := skipWS(b, obj+1)
	if p < len(b) && b[p] == '}' {
		return v0, v1, p, 0, nil
	}
	for {
		p = skipWS(b, p)
		if p >= len(b) || b[p] != '"' {
			return 0, 0, 0, 0, fmt.Errorf("%w: offset %d: expected a member name", ErrNotCanonicalizable, p)
		}
		k1, err := skipString(b, p)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		name := b[p+1 : k1-1]
		p = skipWS(b, k1)
		if p >= len(b) || b[p] != ':' {
			return 0, 0, 0, 0, fmt.Errorf("%w: offset %d: expected ':'", ErrNotCanonicalizable, p)
		}
		p = skipWS(b, p+1)
		e, err := skipValue(b, p)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		n++
		if keyIs(name, key) {
			if v0 >= 0 {
				return 0, 0, 0, 0, fmt.Errorf("%w: offset %d: duplicate member name %q", ErrNotCanonicalizable, p, key)
			}
			v0, v1 = p, e
		}
		p = skipWS(b, e)
		if p >= len(b) {
			return 0, 0, 0, 0, fmt.Errorf("%w: unterminated object", ErrNotCanonicalizable)
		}
		switch b[p] {
		case ',':
			p++
		case '}':
			return v0, v1, p, n, nil
		default:
			return 0, 0, 0, 0, fmt.Errorf("%w: offset %d: expected ',' or '}'", ErrNotCanonicalizable, p)
		}
	}
}

// keyIs reports whether the raw (possibly escaped) member name equals key.
func keyIs(raw []byte, key string) bool {
	if string(raw) == key {
		return true
	}
	for _, ch := range raw {
		if ch == '\\' {
			var c canonicalizer
			q := make([]byte, 0, len(raw)+2)
			q = append(append(append(q, '"'), raw...), '"')
			out, err := c.canonical(nil, q, false, nil)
			return err == nil && string(unescapeCanonical(out[1:len(out)-1])) == key
		}
	}
	return false
}

func skipWS(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// skipString returns the end of the string whose opening quote is b[p]:
// the first quote after it that an odd run of backslashes does not escape
// (found with bytes.IndexByte, which is vectorised; most of an event's
// bytes are in strings).
func skipString(b []byte, p int) (int, error) {
	start := p + 1
	for from := start; ; {
		i := bytes.IndexByte(b[from:], '"')
		if i < 0 {
			return 0, fmt.Errorf("%w: unterminated string", ErrNotCanonicalizable)
		}
		q := from + i
		n := 0
		for k := q - 1; k >= start && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		from = q + 1
	}
}

// skipValue returns the end of the value starting at b[p]. It checks only
// what it needs to find the end.
func skipValue(b []byte, p int) (int, error) {
	if p >= len(b) {
		return 0, fmt.Errorf("%w: unexpected end of input", ErrNotCanonicalizable)
	}
	switch b[p] {
	case '"':
		return skipString(b, p)
	case '{', '[':
		depth := 0
		for p < len(b) {
			switch b[p] {
			case '"':
				e, err := skipString(b, p)
				if err != nil {
					return 0, err
				}
				p = e
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return p + 1, nil
				}
			}
			p++
		}
		return 0, fmt.Errorf("%w: unterminated object or array", ErrNotCanonicalizable)
	}
	s := p
	for p < len(b) && b[p] != ',' && b[p] != '}' && b[p] != ']' && b[p] != ' ' && b[p] != '\t' && b[p] != '\n' && b[p] != '\r' {
		p++
	}
	if p == s {
		return 0, fmt.Errorf("%w: offset %d: expected a value", ErrNotCanonicalizable, p)
	}
	return p, nil
}
