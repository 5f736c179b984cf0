package sinktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
