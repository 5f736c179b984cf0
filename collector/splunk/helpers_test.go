package splunk_test

import (
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// testEvents returns n small OCSF-shaped events of run, timed now: every
// third a Process Activity (1007), the others Compliance Findings (2003).
func testEvents(n int, run string) []collector.Event {
	now := time.Now().UnixMilli()
	evs := make([]collector.Event, n)
	for i := range evs {
		class, name := 2003, "Compliance Finding"
		if i%3 == 0 {
			class, name = 1007, "Process Activity"
		}
		uid := fmt.Sprintf("%s-%04d", run, i)
		data := fmt.Sprintf(`{"class_uid":%d,"class_name":%q,"severity_id":1,"time":%d,"message":"event %d <&>","metadata":{"uid":%q,"correlation_uid":%q},"device":{"hostname":"host-1"}}`,
			class, name, now+int64(i), i, uid, run)
		evs[i] = collector.Event{
			UID: uid, ClassUID: class, ClassName: name, SeverityID: 1, Time: now + int64(i),
			RunID: run, Host: "host-1", Subject: "sandtrail.events", Data: []byte(data),
		}
	}
	return evs
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

func checkAll(t *testing.T, out []collector.Outcome, n int, want collector.Status, reasonHas string) {
	t.Helper()
	if len(out) != n {
		t.Fatalf("got %d outcomes, want %d", len(out), n)
	}
	for i, o := range out {
		if o.Status != want || !strings.Contains(o.Reason, reasonHas) {
			t.Errorf("outcome %d = %v %q, want %v with a reason containing %q", i, o.Status, o.Reason, want, reasonHas)
		}
	}
}
