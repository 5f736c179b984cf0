package syslog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/sinktest"
	"github.com/sandtrail/sandtrail/collector/syslog"
	"github.com/sandtrail/sandtrail/internal/receivers/rsyslog"
)

// The tests in this file run against a real rsyslogd (internal/receivers/
// rsyslog): RFC 5425 over TLS with octet-counted framing, as deployed.

// sinkFor returns a sink for the receiver, with the good client
// certificate when mutual is set, closed at cleanup.
func sinkFor(t *testing.T, recv *rsyslog.Server, mutual bool, tweak func(*syslog.Config)) *syslog.Sink {
	t.Helper()
	cfg := syslog.Config{
		Address: recv.Addr,
		TLS:     syslog.TLSConfig{CAFile: recv.PKI.CAFile, ServerName: recv.PKI.ServerName},
		Backoff: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		MaxMessageSize: 300 << 10,
	}
	if mutual {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = recv.PKI.ClientCertFile, recv.PKI.ClientKeyFile
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := syslog.New(cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// received turns rsyslog's messages into the suite's form, checking each
// message's header on the way.
func received(t *testing.T, recv *rsyslog.Server) []sinktest.Received {
	t.Helper()
	msgs, err := recv.Messages()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sinktest.Received, len(msgs))
	for i, m := range msgs {
		sd := parseSD(t, m.StructuredData)
		out[i] = sinktest.Received{UID: sd["event_uid"], Data: []byte(m.Msg)}
	}
	return out
}

var sdParam = regexp.MustCompile(`([a-z_]+)="((?:[^"\\\]]|\\["\\\]])*)"`)

// parseSD reads the one SD-ELEMENT sandtrail writes, unescaping values.
func parseSD(t *testing.T, sd string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(sd, "[sandtrail@32473 ") || !strings.HasSuffix(sd, "]") {
		t.Fatalf("structured data %q: want one sandtrail@32473 element", sd)
	}
	out := map[string]string{}
	for _, m := range sdParam.FindAllStringSubmatch(sd, -1) {
		out[m[1]] = regexp.MustCompile(`\\(["\\\]])`).ReplaceAllString(m[2], "$1")
	}
	return out
}

func TestConformance(t *testing.T) {
	recv := rsyslog.Start(t, rsyslog.Options{MutualTLS: true})
	sinktest.Run(t, sinktest.Harness{
		New:     func(t *testing.T) collector.Sink { return sinkFor(t, recv, true, nil) },
		Read:    func(t *testing.T) []sinktest.Received { return received(t, recv) },
		Break:   func(*testing.T) { recv.Stop() },
		Restore: func(*testing.T) { recv.Restart() },
		Reject: func(*testing.T) collector.Event {
			return sinktest.LargeEvent(400 << 10) // over the sink's 300 KiB: never truncated, rejected
		},
		Settle:     10 * time.Second,
		ExactBytes: true, // MSG is the event's bytes, untouched
	})
}

// fixtures returns n events built from the repository's example events,
// each with a fresh uid and run, alternately compact, indented (multi-line)
// and carrying non-ASCII text, so that octet counting is exercised.
func fixtures(t *testing.T, n int) []collector.Event {
	t.Helper()
	paths, err := filepath.Glob("../../testdata/events/valid/*/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixture events: %v", err)
	}
	evs := make([]collector.Event, n)
	for i := range evs {
		b, err := os.ReadFile(paths[i%len(paths)])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		meta := m["metadata"].(map[string]any)
		uid := fmt.Sprintf("019ac617-0000-7000-8000-%012d", i)
		run := fmt.Sprintf("run-%d-\"quoted\"-[bracket]-\\", i/10)
		meta["uid"], meta["correlation_uid"] = uid, run
		if i%3 == 2 {
			m["message"] = fmt.Sprintf("ünïcødé ✓ 日本語 %d", i)
		}
		var data []byte
		if i%3 == 1 {
			data, err = json.MarshalIndent(m, "", "  ")
		} else {
			data, err = json.Marshal(m)
		}
		if err != nil {
			t.Fatal(err)
		}
		host, _ := m["device"].(map[string]any)["hostname"].(string)
		sev, _ := m["severity_id"].(float64)
		class, _ := m["class_uid"].(float64)
		ms, _ := m["time"].(float64)
		evs[i] = collector.Event{UID: uid, ClassUID: int(class), ClassName: m["class_name"].(string),
			SeverityID: int(sev), Time: int64(ms), RunID: run, Host: host, Data: data}
	}
	return evs
}

func deliver(t *testing.T, s *syslog.Sink, batch []collector.Event) {
	t.Helper()
	for i, o := range s.Write(t.Context(), batch) {
		if o.Status != collector.Delivered {
			t.Fatalf("event %d: got %s (%s), want delivered", i, o.Status, o.Reason)
		}
	}
}

// TestTLSRoundTrip sends fixture events over TLS and over mutual TLS and
// reads them back from rsyslog: header, structured data and the JSON.
func TestTLSRoundTrip(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) {
			recv := rsyslog.Start(t, rsyslog.Options{MutualTLS: mutual})
			s := sinkFor(t, recv, mutual, func(c *syslog.Config) { c.Facility = "local7" })
			evs := fixtures(t, 120)
			for i := 0; i < len(evs); i += 40 {
				deliver(t, s, evs[i:i+40])
			}
			msgs := recv.Wait(len(evs), 10*time.Second)
			if len(msgs) != len(evs) {
				t.Fatalf("rsyslog holds %d messages, want %d", len(msgs), len(evs))
			}
			for i, m := range msgs {
				ev := evs[i] // one connection: rsyslog keeps the order
				sd := parseSD(t, m.StructuredData)
				want := map[string]string{"class_uid": strconv.Itoa(ev.ClassUID), "severity_id": strconv.Itoa(ev.SeverityID),
					"run": ev.RunID, "event_uid": ev.UID}
				for k, v := range want {
					if sd[k] != v {
						t.Errorf("message %d: structured data %s = %q, want %q", i, k, sd[k], v)
					}
				}
				if m.Msg != string(ev.Data) {
					t.Fatalf("message %d: MSG differs from the event's bytes:\ngot  %q\nwant %q", i, m.Msg, ev.Data)
				}
				if !json.Valid([]byte(m.Msg)) {
					t.Errorf("message %d: MSG is not valid JSON", i)
				}
				if want := 23*8 + syslog.Severity(ev.SeverityID); m.PRI != want {
					t.Errorf("message %d: PRI %d, want %d", i, m.PRI, want)
				}
				if m.Hostname != ev.Host || m.AppName != "sandtrail" || m.ProcID != "-" {
					t.Errorf("message %d: host %q app %q procid %q", i, m.Hostname, m.AppName, m.ProcID)
				}
				if wantID := strings.ReplaceAll(strings.ToLower(ev.ClassName), " ", "_"); m.MsgID != wantID {
					t.Errorf("message %d: MSGID %q, want %q", i, m.MsgID, wantID)
				}
				if ts, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil || ts.UnixMilli() != ev.Time {
					t.Errorf("message %d: timestamp %q (%v), want %d ms", i, m.Timestamp, err, ev.Time)
				}
			}
			if st := s.Stats(); st.Connects != 1 || st.Resent != 0 {
				t.Errorf("stats %+v, want one connection and nothing resent", st)
			}
		})
	}
}

// TestClientCertificateRefused: rsyslog requires a certificate signed by
// its CA; a client with a certificate of another CA, or none, must not see
// its events reported Delivered.
func TestClientCertificateRefused(t *testing.T) {
	recv := rsyslog.Start(t, rsyslog.Options{MutualTLS: true})
	for _, tc := range []struct {
		name       string
		cert, key  string
		wantReason string
	}{
		{"rogue CA", recv.PKI.RogueCertFile, recv.PKI.RogueKeyFile, "closed the connection after the handshake"},
		{"no certificate", "", "", "syslog:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sinkFor(t, recv, false, func(c *syslog.Config) { c.TLS.CertFile, c.TLS.KeyFile = tc.cert, tc.key })
			outs := s.Write(t.Context(), fixtures(t, 3))
			for i, o := range outs {
				if o.Status != collector.Retry || !strings.Contains(o.Reason, tc.wantReason) {
					t.Fatalf("event %d: got %s (%q), want retry with %q", i, o.Status, o.Reason, tc.wantReason)
				}
			}
			t.Logf("refused: %s", outs[0].Reason)
		})
	}
	time.Sleep(300 * time.Millisecond) // anything accepted by mistake would be written by now
	if msgs := recv.Wait(0, 0); len(msgs) != 0 {
		t.Fatalf("rsyslog accepted %d messages from refused clients", len(msgs))
	}
}

// TestReceiverRestart restarts rsyslog mid-stream, once between batches
// while the sink is connected and once with a batch written while it is
// down: every event arrives, duplicates are allowed and counted.
func TestReceiverRestart(t *testing.T) {
	recv := rsyslog.Start(t, rsyslog.Options{MutualTLS: true})
	s := sinkFor(t, recv, true, nil)
	evs := fixtures(t, 200)
	batches := make([][]collector.Event, 0, 10)
	for i := 0; i < len(evs); i += 20 {
		batches = append(batches, evs[i:i+20])
	}
	written := 0
	for i, b := range batches {
		switch i {
		case 3:
			recv.Wait(written, 10*time.Second) // what was sent has landed
			recv.Restart()                     // the sink's connection is now dead
		case 6:
			recv.Wait(written, 10*time.Second)
			recv.Stop()
			for j, o := range s.Write(t.Context(), b) {
				if o.Status != collector.Retry {
					t.Fatalf("receiver down: event %d: got %s (%s), want retry", j, o.Status, o.Reason)
				}
			}
			recv.Restart()
			time.Sleep(20 * time.Millisecond) // past the sink's backoff
		}
		deliver(t, s, b)
		written += len(b)
	}
	msgs := recv.Wait(len(evs), 10*time.Second)
	count := map[string]int{}
	for _, m := range msgs {
		count[parseSD(t, m.StructuredData)["event_uid"]]++
	}
	dups := 0
	for _, ev := range evs {
		switch n := count[ev.UID]; {
		case n == 0:
			t.Errorf("event %s lost", ev.UID)
		case n > 1:
			dups += n - 1
		}
	}
	st := s.Stats()
	t.Logf("%d events, %d messages, %d duplicates; stats %+v", len(evs), len(msgs), dups, st)
	if st.Connects != 3 {
		t.Errorf("connections: got %d, want 3 (first, after the restart, after the outage)", st.Connects)
	}
	if !bytes.Equal([]byte(msgs[len(msgs)-1].Msg), evs[len(evs)-1].Data) {
		t.Errorf("last message is not the last event")
	}
}
