package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/collector"
)

// Helpers the sinks' own tests share, beside the conformance suite.

// FixtureEvents loads the valid OCSF example events matching the glob
// pattern (the repository's testdata/events/valid/*/*.json, from the test's
// directory), as the collector would hand them over.
func FixtureEvents(t testing.TB, pattern string) []collector.Event {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixture events match %s: %v", pattern, err)
	}
	var evs []collector.Event
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			ClassUID   int    `json:"class_uid"`
			ClassName  string `json:"class_name"`
			SeverityID int    `json:"severity_id"`
			Time       int64  `json:"time"`
			Metadata   struct {
				UID            string `json:"uid"`
				CorrelationUID string `json:"correlation_uid"`
			} `json:"metadata"`
			Device struct {
				Hostname string `json:"hostname"`
			} `json:"device"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		evs = append(evs, collector.Event{
			UID: h.Metadata.UID, ClassUID: h.ClassUID, ClassName: h.ClassName, SeverityID: h.SeverityID,
			Time: h.Time, RunID: h.Metadata.CorrelationUID, Host: h.Device.Hostname, Data: b,
		})
	}
	return evs
}

// BlockingServer is an HTTP server that reads each request and answers
// nothing until the client gives up or the test ends, for cancellation
// tests. entered receives once per request.
func BlockingServer(t testing.TB) (srv *httptest.Server, entered <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{}, 16) // never blocks the handler in these few-request tests
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // a read body lets the server notice the client leaving
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv, in
}

// NoLeak checks, after the test's cleanups (registered later, so run
// earlier) closed its servers and sinks, that no goroutine it started is
// left.
func NoLeak(t testing.TB) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// SmallEvents returns n small OCSF-shaped events of run, timed now, for
// sinks' unit tests against fakes: every third a Process Activity (1007),
// the others Compliance Findings (2003); uids are run-0000, run-0001...
// They are not schema-valid (Events is); their message holds "<&>" to
// exercise escaping.
func SmallEvents(n int, run string) []collector.Event {
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

// CheckAll checks that out holds n outcomes, each with status want and a
// reason containing reasonHas.
func CheckAll(t testing.TB, out []collector.Outcome, n int, want collector.Status, reasonHas string) {
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

// CloseDuringWrite checks an HTTP sink's Close: with a Write stuck at the
// server (s posts to a BlockingServer, whose entered channel is given), a
// Close whose ctx ends returns an error wrapping context.DeadlineExceeded
// and cuts the Write short (every event Retry, the reason holding closed);
// a second Close returns nil; Write after Close is all Retry; Write(nil)
// returns no outcomes.
func CloseDuringWrite(t testing.TB, s collector.Sink, entered <-chan struct{}, closed string) {
	t.Helper()
	done := make(chan []collector.Outcome)
	go func() { done <- s.Write(context.Background(), SmallEvents(3, "close")) }()
	<-entered // the Write is at the server

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a Write running = %v, want one wrapping %v", err, context.DeadlineExceeded)
	}
	CheckAll(t, <-done, 3, collector.Retry, closed)
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	CheckAll(t, s.Write(context.Background(), SmallEvents(2, "after")), 2, collector.Retry, closed)
	if out := s.Write(context.Background(), nil); len(out) != 0 {
		t.Errorf("Write(nil) = %v, want no outcomes", out)
	}
}
