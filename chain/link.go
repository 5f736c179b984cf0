package chain

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// LinkMember is the member of the event's unmapped object that holds the
// integrity link: unmapped.sandtrail_integrity.
const LinkMember = "sandtrail_integrity"

// Format constants of version 1 of the link (docs/INTEGRITY.md).
const (
	Version   = 1
	Algorithm = "sha256"
	// SignaturePrefix starts the message the final event's signature
	// covers; see [SignedMessage].
	SignaturePrefix = "sandtrail-chain-v1\n"
)

// zeroHash is the prev of a run's first event.
var zeroHash = [32]byte{}

// Link is the integrity link of one event, unmapped.sandtrail_integrity.
// Its JSON members are written in the order of the fields; the hash
// covers the whole event with Hash and Sig removed.
type Link struct {
	V     int    `json:"v"`                // format version, 1
	Alg   string `json:"alg"`              // "sha256"
	Run   string `json:"run"`              // metadata.correlation_uid
	Seq   int64  `json:"seq"`              // metadata.sequence, 1..N
	Prev  string `json:"prev"`             // hash of the run's previous event, 64 hex; 64 zeros for seq 1
	Final bool   `json:"final,omitempty"`  // true on the run's last event only
	Count int64  `json:"count,omitempty"`  // on the last event: N, the number of events of the run
	KeyID string `json:"key_id,omitempty"` // on a signed last event: hex of sha256(public key)[:16]
	Hash  string `json:"hash"`             // this event's hash, 64 hex
	Sig   string `json:"sig,omitempty"`    // on a signed last event: base64 ed25519 signature, see SignedMessage
}

// ErrNoLink: the event carries no unmapped.sandtrail_integrity object.
var ErrNoLink = errors.New("chain: event has no integrity link")

// Link field indexes in captured.link.
const (
	lV = iota
	lAlg
	lRun
	lSeq
	lPrev
	lFinal
	lCount
	lKeyID
	lHash
	lSig
	nLinkFields
)

var linkNames = [nLinkFields]string{"v", "alg", "run", "seq", "prev", "final", "count", "key_id", "hash", "sig"}

// Metadata field indexes in captured.md.
const (
	mUID = iota
	mSeq
	mRun
	nMDFields
)

type span struct {
	off, n int32
	set    bool
}

// captured holds, in canonical form, the values the verifier and the
// sealer read from an event while it is canonicalized.
type captured struct {
	buf                  []byte
	md                   [nMDFields]span
	link                 [nLinkFields]span
	sawMetadata, sawLink bool
	prev, hash           [32]byte // decoded by parseLink
}

func (c *captured) reset() {
	*c = captured{buf: c.buf[:0]}
}

func (c *captured) sawObject(path int) {
	switch path {
	case pathMetadata:
		c.sawMetadata = true
	case pathLink:
		c.sawLink = true
	}
}

func (c *captured) record(path int, key, val []byte) {
	var s *span
	switch path {
	case pathMetadata:
		switch string(key) {
		case "uid":
			s = &c.md[mUID]
		case "sequence":
			s = &c.md[mSeq]
		case "correlation_uid":
			s = &c.md[mRun]
		}
	case pathLink:
		for i, name := range linkNames {
			if string(key) == name {
				s = &c.link[i]
				break
			}
		}
	}
	if s == nil {
		return
	}
	*s = span{off: int32(len(c.buf)), n: int32(len(val)), set: true}
	c.buf = append(c.buf, val...)
}

func (c *captured) raw(s span) []byte { return c.buf[s.off : s.off+s.n] }

// str returns a captured canonical string's value; ok is false when the
// value is absent or not a string.
func (c *captured) str(s span) (string, bool) {
	b, ok := c.bytes(s)
	return string(b), ok
}

// bytes is str without the copy to a string: the value is in c.buf
// unless it holds an escape.
func (c *captured) bytes(s span) ([]byte, bool) {
	if !s.set {
		return nil, false
	}
	b := c.raw(s)
	if len(b) < 2 || b[0] != '"' {
		return nil, false
	}
	b = b[1 : len(b)-1]
	if bytes.IndexByte(b, '\\') >= 0 {
		b = unescapeCanonical(b)
	}
	return b, true
}

// int returns a captured canonical integer; ok is false when the value is
// absent or not an integer.
func (c *captured) int(s span) (int64, bool) {
	if !s.set {
		return 0, false
	}
	n, err := strconv.ParseInt(string(c.raw(s)), 10, 64)
	return n, err == nil
}

// parseLink decodes and checks the captured link. It returns ErrNoLink
// when the event has none. Unless full, it leaves Alg, Run, Prev and Hash
// empty, sparing their allocation: the verifier reads the run with
// runBytes and uses c.prev and c.hash.
func (c *captured) parseLink(full bool) (Link, error) {
	var l Link
	if !c.sawLink {
		return l, ErrNoLink
	}
	var bad []string
	need := func(ok bool, what string) {
		if !ok {
			bad = append(bad, what)
		}
	}
	v, ok := c.int(c.link[lV])
	l.V = int(v)
	need(ok && v == Version, "v is not 1")
	alg, ok := c.bytes(c.link[lAlg])
	need(ok && string(alg) == Algorithm, `alg is not "sha256"`)
	run, ok := c.runBytes()
	need(ok && len(run) > 0, "run is missing or empty")
	l.Seq, ok = c.int(c.link[lSeq])
	need(ok && l.Seq >= 1, "seq is not an integer from 1")
	prev, ok := c.bytes(c.link[lPrev])
	need(ok && decodeHex32(&c.prev, prev), "prev is not 64 lowercase hex digits")
	hash, ok := c.bytes(c.link[lHash])
	need(ok && decodeHex32(&c.hash, hash), "hash is not 64 lowercase hex digits")
	if full {
		l.Alg, l.Run, l.Prev, l.Hash = string(alg), string(run), string(prev), string(hash)
	}
	if s := c.link[lFinal]; s.set {
		raw := string(c.raw(s))
		need(raw == "true", "final is present but not true")
		l.Final = raw == "true"
	}
	if s := c.link[lCount]; s.set {
		l.Count, ok = c.int(s)
		need(ok && l.Count >= 1, "count is not an integer from 1")
		need(l.Final, "count on an event that is not final")
	}
	need(!l.Final || c.link[lCount].set, "final event without count")
	if s := c.link[lKeyID]; s.set {
		l.KeyID, ok = c.str(s)
		need(ok && len(l.KeyID) == 32 && isLowerHex(l.KeyID), "key_id is not 32 lowercase hex digits")
	}
	if s := c.link[lSig]; s.set {
		l.Sig, ok = c.str(s)
		need(ok, "sig is not a string")
		need(l.Final, "sig on an event that is not final")
	}
	if len(bad) > 0 {
		return l, &LinkError{Problems: bad}
	}
	return l, nil
}

// runBytes returns the link's run, as parseLink(true) sets Link.Run.
func (c *captured) runBytes() ([]byte, bool) {
	if !c.sawLink {
		return nil, false
	}
	return c.bytes(c.link[lRun])
}

// LinkError says why an integrity link is malformed.
type LinkError struct{ Problems []string }

func (e *LinkError) Error() string {
	return fmt.Sprintf("chain: malformed integrity link: %s", joinProblems(e.Problems))
}

func joinProblems(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// hexVal maps a lowercase hex digit to its value, anything else to 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// decodeHex32 decodes 64 lowercase hex digits into h.
func decodeHex32[S string | []byte](h *[32]byte, s S) bool {
	if len(s) != 64 {
		return false
	}
	bad := byte(0)
	for i := range h {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		bad |= hi | lo
		h[i] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f') {
			return false
		}
	}
	return true
}

func decodeHash(s string) [32]byte {
	var h [32]byte
	decodeHex32(&h, s)
	return h
}

// ReadLink returns the integrity link of an encoded event, checked for
// form (not against the event's content: that is the Verifier's job). It
// returns an error wrapping ErrNoLink for an event without one, a
// *LinkError for a malformed one, and an error wrapping
// ErrNotCanonicalizable for input that is not canonicalizable JSON.
func ReadLink(event []byte) (Link, error) {
	var c canonicalizer
	var cp captured
	if _, err := c.canonical(nil, event, true, &cp); err != nil {
		return Link{}, err
	}
	return cp.parseLink(true)
}
