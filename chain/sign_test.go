package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestParseSigner(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.FromRawSeed(nkeys.PrefixByteUser, seed)
	userSeed, _ := user.Seed()
	account, _ := nkeys.FromRawSeed(nkeys.PrefixByteAccount, seed)
	accountSeed, _ := account.Seed()
	creds := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(userSeed) + "\n------END USER NKEY SEED------\n"
	for name, in := range map[string]string{
		"hex seed":            hex.EncodeToString(seed) + "\n",
		"HEX seed":            strings.ToUpper(hex.EncodeToString(seed)),
		"base64 seed":         base64.StdEncoding.EncodeToString(seed),
		"raw url base64 seed": base64.RawURLEncoding.EncodeToString(seed),
		"hex private key":     hex.EncodeToString(ed25519.NewKeyFromSeed(seed)),
		"nkey user seed":      "  " + string(userSeed) + "\n",
		"nkey account seed":   string(accountSeed),
		"creds file":          creds,
		"PKCS #8 PEM":         string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
	} {
		s, err := ParseSigner([]byte(in))
		if err != nil {
			t.Errorf("%s: ParseSigner: %v", name, err)
			continue
		}
		if !s.PublicKey().Equal(want) || s.KeyID() != KeyID(want) {
			t.Errorf("%s: public key %x, want %x", name, s.PublicKey(), want)
		}
	}
	curve, _ := nkeys.CreateCurveKeys()
	curveSeed, _ := curve.Seed()
	mismatched := append(append([]byte{}, seed...), bytes.Repeat([]byte{1}, 32)...)
	for name, in := range map[string]string{
		"empty":            "",
		"short":            "abcd",
		"curve seed":       string(curveSeed),
		"public nkey":      mustPublic(t, user),
		"mismatched 64":    hex.EncodeToString(mismatched),
		"33 bytes":         base64.StdEncoding.EncodeToString(append(seed, 1)),
		"corrupt nkey":     "SU" + strings.Repeat("A", 56),
		"PEM of other key": "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
	} {
		if _, err := ParseSigner([]byte(in)); err == nil {
			t.Errorf("%s: ParseSigner succeeded", name)
		}
	}
}

func mustPublic(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	p, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePublicKey(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pkix, _ := x509.MarshalPKIXPublicKey(want)
	user, _ := nkeys.FromRawSeed(nkeys.PrefixByteUser, seed)
	userSeed, _ := user.Seed()
	for name, in := range map[string]string{
		"hex":       hex.EncodeToString(want),
		"base64":    base64.StdEncoding.EncodeToString(want) + "\n",
		"nkey user": mustPublic(t, user),
		"PKIX PEM":  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
	} {
		got, err := ParsePublicKey([]byte(in))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: ParsePublicKey = %x, %v; want %x", name, got, err, want)
		}
	}
	for name, in := range map[string]string{
		"nkey seed":  string(userSeed),
		"PEM secret": "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
		"64 bytes":   hex.EncodeToString(ed25519.NewKeyFromSeed(seed)),
		"garbage":    "not a key",
	} {
		if _, err := ParsePublicKey([]byte(in)); err == nil {
			t.Errorf("%s: ParsePublicKey succeeded", name)
		}
	}
	// LoadPublicKey and LoadSigner name the file in errors.
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicKey(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadPublicKey error %v does not name the file", err)
	}
	if _, err := LoadSigner(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadSigner error %v does not name the file", err)
	}
}

// The private key never reaches a log line or a formatted value.
func TestSignerRedacted(t *testing.T) {
	s := testSigner(t)
	seedHex := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "signer", s)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %x", s, s, s, s, s), fmt.Sprint(*s), fmt.Sprintf("%+v", struct{ S Signer }{*s}), logged.String()} {
		if strings.Contains(out, seedHex[:16]) || strings.Contains(out, "7 7 7") || strings.Contains(out, "7, 7, 7") || !strings.Contains(out, s.KeyID()) {
			t.Errorf("formatted signer %q shows the key or hides the key id", out)
		}
	}
}
