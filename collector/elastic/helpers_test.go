package elastic_test

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/elastic"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newSink returns a sink for cfg, closed at cleanup.
func newSink(t *testing.T, cfg elastic.Config) *elastic.Sink {
	t.Helper()
	s, err := elastic.New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

// mark puts word into an event's message: the fakes' scripted failures.
func mark(ev collector.Event, word string) collector.Event {
	ev.Data = []byte(strings.Replace(string(ev.Data), `"message":"`, `"message":"`+word+` `, 1))
	return ev
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeCA writes the certificate of an httptest TLS server as a PEM CA file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
}
