package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/schema"
)

// startServerCmd runs `sandtrail server` in-process and returns its client
// URL and a stop function that waits for it to return.
func startServerCmd(t *testing.T, store, spoolDir string) (url string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--listen", "127.0.0.1:0", "--store", store, "--spool", spoolDir, "--stream-max-bytes", "67108864"},
			strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "listening on "); i >= 0 {
			url = strings.Fields(line[i+len("listening on "):])[0]
			url = strings.TrimSuffix(url, ",")
		}
		if strings.Contains(line, "ready") {
			ready = true
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !ready || url == "" {
		cancel()
		t.Fatalf("server did not become ready (url %q)", url)
	}
	return url, func() int { cancel(); return <-done }
}

func TestServerRecordsItsLifecycle(t *testing.T) {
	store, spoolDir := t.TempDir(), t.TempDir()
	url, stop := startServerCmd(t, store, spoolDir)
	if code := stop(); code != 0 {
		t.Fatalf("server exited %d", code)
	}
	// A second start on the same store finds the first run's events.
	url, stop = startServerCmd(t, store, spoolDir)
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if err := schema.Validate(m.Data); err != nil {
			t.Errorf("message %d invalid: %v", seq, err)
		}
		var ev struct {
			ClassUID int `json:"class_uid"`
			Metadata struct {
				EventCode string `json:"event_code"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(m.Data, &ev)
		if ev.ClassUID != 6002 {
			t.Errorf("message %d is class %d, want 6002", seq, ev.ClassUID)
		}
		codes = append(codes, ev.Metadata.EventCode)
	}
	if want := "SERVER_STARTED,SERVER_STOPPED,SERVER_STARTED"; strings.Join(codes, ",") != want {
		t.Errorf("event codes %v, want %s", codes, want)
	}
}
