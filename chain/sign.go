package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/nats-io/nkeys"
)

// Signer signs the chain head of a run's final event with an ed25519
// private key. It is immutable and safe for concurrent use. Printing or
// logging a Signer shows only its key id, never the key.
type Signer struct {
	priv  secretKey
	pub   ed25519.PublicKey
	keyID string
}

// secretKey prints as [REDACTED], even inside a copied Signer.
type secretKey ed25519.PrivateKey

func (secretKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[REDACTED]") }

// NewSigner returns a Signer for an ed25519 private key.
func NewSigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("chain: ed25519 private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Signer{priv: secretKey(priv), pub: pub, keyID: KeyID(pub)}, nil
}

// LoadSigner reads a signing key from a file; see [ParseSigner] for the
// forms accepted.
func LoadSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: signing key: %w", err)
	}
	s, err := ParseSigner(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSigner parses an ed25519 signing key, surrounding whitespace
// ignored, in one of these forms:
//   - a raw 32-byte seed (or the 64-byte seed||public key of Go's
//     ed25519.PrivateKey) in hex or base64 (standard or URL alphabet,
//     padded or not);
//   - an nkey seed (SU..., SA..., SO..., SN..., SC...; not a curve SX
//     seed), alone or in a decorated .creds file;
//   - a PEM "PRIVATE KEY" block holding a PKCS #8 ed25519 key (what
//     `openssl genpkey -algorithm ed25519` writes).
func ParseSigner(data []byte) (*Signer, error) {
	s := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(s, []byte("-----BEGIN PRIVATE KEY-----")):
		blk, _ := pem.Decode(s)
		if blk == nil {
			return nil, errors.New("chain: signing key: malformed PEM")
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chain: signing key: %w", err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("chain: signing key: a %T, not an ed25519 key", k)
		}
		return NewSigner(priv)
	case bytes.Contains(s, []byte("NKEY SEED")), len(s) > 0 && s[0] == 'S' && !isHexOrBase64Seed(s):
		return parseNKeySeed(s)
	}
	raw, err := decodeKeyBytes(s)
	if err != nil {
		return nil, fmt.Errorf("chain: signing key: %w", err)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return NewSigner(ed25519.NewKeyFromSeed(raw))
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return nil, errors.New("chain: signing key: 64-byte key whose public half does not match its seed")
		}
		return NewSigner(priv)
	}
	return nil, fmt.Errorf("chain: signing key: %d bytes, want a 32-byte ed25519 seed", len(raw))
}

// isHexOrBase64Seed reports whether s decodes as 32 or 64 raw bytes, which
// an nkey seed (58 characters of base32) never does.
func isHexOrBase64Seed(s []byte) bool {
	raw, err := decodeKeyBytes(s)
	return err == nil && (len(raw) == 32 || len(raw) == 64)
}

func parseNKeySeed(s []byte) (*Signer, error) {
	var seed []byte
	if bytes.Contains(s, []byte("NKEY SEED")) {
		kp, err := nkeys.ParseDecoratedNKey(s)
		if err != nil {
			return nil, fmt.Errorf("chain: signing key: nkey seed: %w", err)
		}
		if seed, err = kp.Seed(); err != nil {
			return nil, fmt.Errorf("chain: signing key: nkey seed: %w", err)
		}
	} else {
		seed = s
	}
	prefix, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("chain: signing key: nkey seed: %w", err)
	}
	if prefix == nkeys.PrefixByteCurve {
		return nil, errors.New("chain: signing key: a curve (xkey) seed cannot sign; use a user or account nkey seed")
	}
	return NewSigner(ed25519.NewKeyFromSeed(raw))
}

func decodeKeyBytes(s []byte) ([]byte, error) {
	str := string(s)
	if (len(str) == 64 || len(str) == 128) && isHexDigits(str) {
		return hex.DecodeString(str)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(str); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("neither hex, base64, an nkey nor PEM")
}

func isHexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F') {
			return false
		}
	}
	return true
}

// PublicKey returns the public key that verifies this Signer's
// signatures.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.pub }

// KeyID returns the key id written in signed final events.
func (s *Signer) KeyID() string { return s.keyID }

// Sign returns the signature of a run's chain head (see [SignedMessage]).
func (s *Signer) Sign(run string, count int64, head [32]byte) []byte {
	return ed25519.Sign(ed25519.PrivateKey(s.priv), SignedMessage(run, count, head))
}

// String returns "ed25519 key <key id>".
func (s Signer) String() string { return "ed25519 key " + s.keyID }

// GoString is String: the private key never reaches a %#v.
func (s Signer) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Signer) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue logs only the key id.
func (s Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText is String, so encoders never see the key.
func (s Signer) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// KeyID returns the key id of an ed25519 public key: the lowercase hex of
// the first 16 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// SignedMessage returns the bytes a final event's signature covers:
//
//	"sandtrail-chain-v1\n" + run + "\n" + decimal(count) + "\n" + hex(head)
//
// where head is the final event's hash.
func SignedMessage(run string, count int64, head [32]byte) []byte {
	m := make([]byte, 0, len(SignaturePrefix)+len(run)+1+20+1+64)
	m = append(m, SignaturePrefix...)
	m = append(m, run...)
	m = append(m, '\n')
	m = strconv.AppendInt(m, count, 10)
	m = append(m, '\n')
	return hex.AppendEncode(m, head[:])
}

// LoadPublicKey reads a verification key from a file; see
// [ParsePublicKey].
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: public key: %w", err)
	}
	k, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParsePublicKey parses an ed25519 public key, surrounding whitespace
// ignored: 32 raw bytes in hex or base64, an nkey public key (U..., A...,
// O..., N..., C...), or a PEM "PUBLIC KEY" block (PKIX, what `openssl pkey
// -pubout` writes). A private seed is refused: give verifiers the public
// key only.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	s := bytes.TrimSpace(data)
	if bytes.HasPrefix(s, []byte("-----BEGIN PUBLIC KEY-----")) {
		blk, _ := pem.Decode(s)
		if blk == nil {
			return nil, errors.New("chain: public key: malformed PEM")
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chain: public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("chain: public key: a %T, not an ed25519 key", k)
		}
		return pub, nil
	}
	if bytes.Contains(s, []byte("PRIVATE KEY")) || bytes.Contains(s, []byte("NKEY SEED")) {
		return nil, errors.New("chain: public key: this is a private key; give the public key")
	}
	if len(s) == 56 && nkeys.IsValidPublicKey(string(s)) {
		prefix := nkeys.Prefix(string(s))
		if prefix == nkeys.PrefixByteCurve {
			return nil, errors.New("chain: public key: a curve (xkey) key cannot verify signatures")
		}
		raw, err := nkeys.Decode(prefix, s)
		if err != nil {
			return nil, fmt.Errorf("chain: public key: nkey: %w", err)
		}
		return ed25519.PublicKey(raw), nil
	}
	if len(s) > 0 && s[0] == 'S' && !isHexOrBase64Seed(s) {
		return nil, errors.New("chain: public key: this is an nkey seed (private); give the public key (nk -inkey SEEDFILE -pubout)")
	}
	raw, err := decodeKeyBytes(s)
	if err != nil {
		return nil, fmt.Errorf("chain: public key: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("chain: public key: %d bytes, want 32", len(raw))
	}
	return ed25519.PublicKey(raw), nil
}
