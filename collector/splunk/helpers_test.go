package splunk_test

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/splunk"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "11111111-2222-3333-4444-555555555555"

// tokenFile writes the test token to a file and returns its path.
func tokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hec.token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newSink returns a sink for cfg with the test token, closed at cleanup.
func newSink(t *testing.T, cfg splunk.Config) *splunk.Sink {
	t.Helper()
	if cfg.TokenFile == "" && cfg.TokenEnv == "" {
		cfg.TokenFile = tokenFile(t)
	}
	s, err := splunk.New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

// writeCA writes the certificate of an httptest TLS server as a PEM CA file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// statuses counts outcomes by status.
func statuses(out []collector.Outcome) map[collector.Status]int {
	m := map[collector.Status]int{}
	for _, o := range out {
		m[o.Status]++
	}
	return m
}
