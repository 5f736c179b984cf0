package alert_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a manual clock for Config.Now: the window and the rate limit
// are tested without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 11, 27, 16, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// webhook is an httptest receiver that records every POST body and answers
// with the status it is told.
type webhook struct {
	*httptest.Server
	status atomic.Int32
	header http.Header // extra answer headers, set before use

	mu     sync.Mutex
	bodies [][]byte
	auth   []string
}

func newWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{header: http.Header{}}
	w.status.Store(http.StatusOK)
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code := int(w.status.Load())
		w.mu.Lock()
		if code/100 == 2 {
			w.bodies = append(w.bodies, b)
		}
		w.auth = append(w.auth, r.Header.Get("Authorization"))
		w.mu.Unlock()
		for k, v := range w.header {
			rw.Header()[k] = v
		}
		rw.WriteHeader(code)
		fmt.Fprintf(rw, "status %d", code)
	}))
	t.Cleanup(w.Close)
	return w
}

// payloads decodes what the webhook accepted.
func (w *webhook) payloads(t *testing.T) []alert.Payload {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]alert.Payload, len(w.bodies))
	for i, b := range w.bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("payload %d: %v\n%s", i, err, b)
		}
	}
	return out
}

func (w *webhook) alerts(t *testing.T) []alert.Alert {
	var out []alert.Alert
	for _, p := range w.payloads(t) {
		out = append(out, p.Alerts...)
	}
	return out
}

func newSink(t *testing.T, cfg alert.Config) *alert.Sink {
	t.Helper()
	s, err := alert.New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

// fixture loads an example event of the repository, lets edit change it
// and returns it as the collector hands it over, with a uid made from
// seq and the run id given.
func fixture(t testing.TB, name, run string, seq int, edit func(m map[string]any)) collector.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata/events/valid", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	meta := m["metadata"].(map[string]any)
	uid := fmt.Sprintf("%s-%04d", run, seq)
	meta["uid"], meta["sequence"] = uid, seq
	if run == "" {
		delete(meta, "correlation_uid")
		uid = fmt.Sprintf("no-run-%04d", seq)
		meta["uid"] = uid
	} else {
		meta["correlation_uid"] = run
	}
	if edit != nil {
		edit(m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := m["device"].(map[string]any)["hostname"].(string)
	sev, _ := m["severity_id"].(float64)
	class, _ := m["class_uid"].(float64)
	ms, _ := m["time"].(float64)
	return collector.Event{UID: uid, ClassUID: int(class), ClassName: m["class_name"].(string), SeverityID: int(sev),
		Time: int64(ms), RunID: run, Host: host, Data: data}
}

// seccompDegraded turns a passing seccomp finding, or the capability
// Detection Finding, into seccomp's degradation.
func seccompDegraded(m map[string]any) {
	if c, ok := m["compliance"].(map[string]any); ok {
		c["status_id"], c["status"], c["status_code"] = 2, "Warning", "ENOSYS"
		c["status_details"] = []string{"seccomp(SECCOMP_SET_MODE_FILTER): ENOSYS: kernel built without CONFIG_SECCOMP_FILTER"}
		m["severity_id"], m["severity"] = 4, "High"
		return
	}
	fi := m["finding_info"].(map[string]any)
	fi["analytic"].(map[string]any)["name"] = "seccomp"
	fi["uid"] = m["metadata"].(map[string]any)["correlation_uid"].(string) + "/seccomp/degraded"
	fi["title"] = "seccomp filter not installed (ENOSYS)"
	m["status_code"] = "ENOSYS"
	m["remediation"] = map[string]any{"desc": "Boot a kernel with CONFIG_SECCOMP_FILTER=y."}
}

// degradedRun is one degraded launch as the supervisor reports it: twelve
// events, of which two controls degraded (a Compliance Finding and a
// Detection Finding each), seven controls passed, and the posture At Risk.
func degradedRun(t testing.TB, run string) []collector.Event {
	seq := 0
	ev := func(name string, edit func(map[string]any)) collector.Event {
		seq++
		return fixture(t, name, run, seq, edit)
	}
	return []collector.Event{
		ev("compliance_finding/capbset-warning", nil),
		ev("detection_finding/capbset-degraded", nil),
		ev("compliance_finding/capabilities-pass", nil),
		ev("compliance_finding/privilege-drop-pass", nil),
		ev("compliance_finding/no-new-privs-pass", nil),
		ev("compliance_finding/seccomp-pass", seccompDegraded),
		ev("detection_finding/capbset-degraded", seccompDegraded),
		ev("compliance_finding/landlock-pass", nil),
		ev("compliance_finding/namespaces-pass", nil),
		ev("compliance_finding/rlimits-pass", nil),
		ev("compliance_finding/core-dump-pass", nil),
		ev("device_config_state_change/posture-at-risk", nil),
	}
}

// refusedRun is a launch refused because a required control failed.
func refusedRun(t testing.TB, run string) []collector.Event {
	return []collector.Event{
		fixture(t, "compliance_finding/landlock-fail", run, 1, nil),
		fixture(t, "detection_finding/launch-refused", run, 2, nil),
		fixture(t, "process_activity/launch-failure", run, 3, nil),
	}
}

func statuses(outs []collector.Outcome) []collector.Status {
	s := make([]collector.Status, len(outs))
	for i, o := range outs {
		s[i] = o.Status
	}
	return s
}

func wantAll(t *testing.T, outs []collector.Outcome, want collector.Status) {
	t.Helper()
	for i, o := range outs {
		if o.Status != want {
			t.Fatalf("event %d: got %s (%q), want %s; all: %v", i, o.Status, o.Reason, want, statuses(outs))
		}
	}
}
