package victorialogs_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandtrail/sandtrail/internal/receivers/victorialogs"
)

// TestMain checks that Start's goroutines (output reader, process waiter)
// end with the server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStartIngestCount proves the helper end to end: VictoriaLogs starts,
// JSON lines posted to it are counted, and the count query filters on
// fields.
func TestStartIngestCount(t *testing.T) {
	vl := victorialogs.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	post := func(contentType, body string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, vl.URL+"/insert/jsonline", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	post("application/stream+json", fmt.Sprintf(`{"_msg":"a","_time":%q,"k":"1"}`+"\n"+`{"_msg":"b","_time":%q,"k":"2"}`+"\n", now, now))

	if n, err := vl.WaitCount(ctx, "*", 2); err != nil || n != 2 {
		t.Fatalf("WaitCount(*) = %d, %v; want 2\n%s", n, err, vl.Output())
	}
	if n, err := vl.Count(ctx, "k:=2"); err != nil || n != 1 {
		t.Errorf("Count(k:=2) = %d, %v; want 1", n, err)
	}
}

func TestPath(t *testing.T) {
	p, err := victorialogs.Path()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, victorialogs.Binary) {
		t.Errorf("Path() = %q; want a path ending in %q", p, victorialogs.Binary)
	}
}

// TestStopRestart: a stopped server refuses connections; restarted, it
// listens on the same address and still holds what it stored.
func TestStopRestart(t *testing.T) {
	vl := victorialogs.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := vl.URL
	body := fmt.Sprintf(`{"_msg":"kept","_time":%q,"k":"stop"}`+"\n", time.Now().UTC().Format(time.RFC3339Nano))
	resp, err := http.Post(vl.URL+"/insert/jsonline", "application/stream+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, err := vl.WaitCount(ctx, "k:=stop", 1); err != nil || n != 1 {
		t.Fatalf("WaitCount = %d, %v; want 1", n, err)
	}

	vl.Stop(t)
	if _, err := vl.Count(ctx, "*"); err == nil {
		t.Error("Count on a stopped server succeeded")
	}
	vl.Restart(t)
	if vl.URL != url {
		t.Errorf("restarted on %s, want %s", vl.URL, url)
	}
	rows, err := vl.Query(ctx, "k:=stop")
	if err != nil || len(rows) != 1 || rows[0]["_msg"] != "kept" {
		t.Errorf("Query after restart = %v, %v; want the one row", rows, err)
	}
}
