package rsyslog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ServerName is the DNS name in the server certificate (beside the IP
// address 127.0.0.1).
const ServerName = "rsyslog.sandtrail.test"

// PKI is a throwaway certificate authority with a server certificate for
// rsyslog, a client certificate it signed (mutual TLS accepted) and a
// client certificate signed by an unrelated CA (mutual TLS refused). All
// files are PEM in a test's temporary directory.
type PKI struct {
	CAFile         string // the CA that signed the server and the good client
	ServerCertFile string
	ServerKeyFile  string
	ClientCertFile string // signed by CAFile
	ClientKeyFile  string
	RogueCAFile    string // an unrelated CA
	RogueCertFile  string // a client certificate signed by RogueCAFile
	RogueKeyFile   string
	ServerName     string // the DNS name in the server certificate
}

// NewPKI writes a fresh PKI into t.TempDir().
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{ServerName: ServerName}
	ca, caKey := newCA(t, "sandtrail test CA")
	rogue, rogueKey := newCA(t, "rogue test CA")
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	p.RogueCAFile = writePEM(t, dir, "rogue-ca.pem", "CERTIFICATE", rogue.Raw)

	srv := &x509.Certificate{
		Subject:     pkix.Name{CommonName: ServerName},
		DNSNames:    []string{ServerName, "localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	p.ServerCertFile, p.ServerKeyFile = issue(t, dir, "server", srv, ca, caKey)
	cli := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "sandtrail-collector"},
		DNSNames:    []string{"sandtrail-collector"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.ClientCertFile, p.ClientKeyFile = issue(t, dir, "client", cli, ca, caKey)
	bad := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "sandtrail-collector"},
		DNSNames:    []string{"sandtrail-collector"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.RogueCertFile, p.RogueKeyFile = issue(t, dir, "rogue-client", bad, rogue, rogueKey)
	return p
}

func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("rsyslog: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("rsyslog: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("rsyslog: parse CA certificate: %v", err)
	}
	return cert, key
}

func issue(t testing.TB, dir, name string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("rsyslog: %s key: %v", name, err)
	}
	tmpl.SerialNumber = nextSerial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("rsyslog: %s certificate: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("rsyslog: %s key: %v", name, err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("rsyslog: %v", err)
	}
	return path
}
