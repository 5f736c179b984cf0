package rsyslog

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func clientConfig(t *testing.T, p *PKI, cert, key string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: pool, ServerName: p.ServerName}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func TestReceivesOctetCounted(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) {
			s := Start(t, Options{MutualTLS: mutual})
			var cfg *tls.Config
			if mutual {
				cfg = clientConfig(t, s.PKI, s.PKI.ClientCertFile, s.PKI.ClientKeyFile)
			} else {
				cfg = clientConfig(t, s.PKI, "", "")
			}
			conn, err := tls.Dial("tcp", s.Addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			msg := "{\"a\":\"multi\nline\",\"b\":\"ünïcødé ✓\"}"
			line := `<165>1 2025-11-27T18:00:00.123Z host.example sandtrail - compliance_finding [x@32473 k="v\]"] ` + msg
			if _, err := fmt.Fprintf(conn, "%d %s", len(line), line); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			got := s.Wait(1, 10*time.Second)
			if len(got) != 1 {
				t.Fatalf("got %d messages, want 1", len(got))
			}
			m := got[0]
			if m.PRI != 165 || m.Hostname != "host.example" || m.AppName != "sandtrail" || m.MsgID != "compliance_finding" {
				t.Errorf("got %+v", m)
			}
			if m.StructuredData != `[x@32473 k="v\]"]` {
				t.Errorf("structured data: got %q", m.StructuredData)
			}
			if m.Msg != msg {
				t.Errorf("msg: got %q, want %q", m.Msg, msg)
			}
		})
	}
}

func TestRogueClientRefused(t *testing.T) {
	s := Start(t, Options{MutualTLS: true})
	cfg := clientConfig(t, s.PKI, s.PKI.RogueCertFile, s.PKI.RogueKeyFile)
	conn, err := tls.Dial("tcp", s.Addr, cfg)
	if err == nil {
		// TLS 1.3: the server judges the client certificate after the
		// client's handshake completed; its verdict arrives on read.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("rogue client: got %v, want the connection refused", err)
	}
	t.Logf("rogue client refused: %v", err)
}

func TestRestartKeepsPort(t *testing.T) {
	s := Start(t, Options{})
	addr := s.Addr
	s.Restart()
	if s.Addr != addr {
		t.Fatalf("after restart: got %s, want %s", s.Addr, addr)
	}
}
