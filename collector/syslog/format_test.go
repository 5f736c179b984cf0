package syslog

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sandtrail/sandtrail/collector"
)

func TestSeverity(t *testing.T) {
	for _, tc := range []struct{ ocsf, want int }{
		{0, 5}, {1, 6}, {2, 5}, {3, 4}, {4, 3}, {5, 2}, {6, 1}, {99, 5}, {-1, 5}, {7, 5},
	} {
		if got := Severity(tc.ocsf); got != tc.want {
			t.Errorf("Severity(%d) = %d, want %d", tc.ocsf, got, tc.want)
		}
	}
}

var testFormatter = formatter{facility: 20, hostname: "collector-1", appName: "sandtrail", sdID: "sandtrail@32473"}

func TestAppendMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   collector.Event
		want string
	}{
		{
			name: "compliance finding",
			ev: collector.Event{UID: "019ac617-3127-7001-80a1-3c9efa1d7f43", ClassUID: 2003, ClassName: "Compliance Finding",
				SeverityID: 4, Time: 1764260000039, RunID: "019ac617-3100-7000-80a1-3c9efa1d7f42",
				Host: "build-07.ci.example.net", Data: []byte(`{"class_uid":2003}`)},
			// local4 (20) * 8 + error (3) = 163
			want: `<163>1 2025-11-27T16:13:20.039Z build-07.ci.example.net sandtrail - compliance_finding ` +
				`[sandtrail@32473 class_uid="2003" severity_id="4" run="019ac617-3100-7000-80a1-3c9efa1d7f42" ` +
				`event_uid="019ac617-3127-7001-80a1-3c9efa1d7f43"] {"class_uid":2003}`,
		},
		{
			name: "no host, no run, no time, unknown severity",
			ev:   collector.Event{UID: "u1", ClassUID: 6002, ClassName: "Application Lifecycle", Data: []byte(`{}`)},
			want: `<165>1 - collector-1 sandtrail - application_lifecycle [sandtrail@32473 class_uid="6002" severity_id="0" event_uid="u1"] {}`,
		},
		{
			name: "escapes and odd names",
			ev: collector.Event{UID: `a"b\c]d`, ClassUID: 1, ClassName: "", SeverityID: 6, Time: 1,
				RunID: "r]", Host: "bad host ü", Data: []byte("{\n \"m\": \"ü\"\n}")},
			want: "<161>1 1970-01-01T00:00:00.001Z bad_host___ sandtrail - class_1 " +
				`[sandtrail@32473 class_uid="1" severity_id="6" run="r\]" event_uid="a\"b\\c\]d"] ` + "{\n \"m\": \"ü\"\n}",
		},
		{
			name: "no data",
			ev:   collector.Event{UID: "u", ClassUID: 2004, ClassName: "Detection Finding", SeverityID: 5, Host: "h"},
			want: `<162>1 - h sandtrail - detection_finding [sandtrail@32473 class_uid="2004" severity_id="5" event_uid="u"]`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(testFormatter.appendMessage(nil, &tc.ev))
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestMsgID(t *testing.T) {
	for name, want := range map[string]string{
		"Compliance Finding":                         "compliance_finding",
		"Device Config State Change":                 "device_config_state_change",
		"Process Activity":                           "process_activity",
		"A Very Long Class Name That Goes On And On": "a_very_long_class_name_that_goes",
		"Ünïcode-Name":                               "ncode_name",
	} {
		got := string(appendMsgID(nil, &collector.Event{ClassName: name}))
		if got != want {
			t.Errorf("msgid(%q) = %q, want %q", name, got, want)
		}
		if len(got) > 32 {
			t.Errorf("msgid(%q) is %d characters, RFC 5424 allows 32", name, len(got))
		}
	}
}

func TestAppendFrame(t *testing.T) {
	ev := collector.Event{UID: "u", ClassUID: 2003, ClassName: "Compliance Finding", SeverityID: 1,
		Data: []byte("{\"message\": \"multi\nline ✓ ünïcode\"}")}
	frame, err := testFormatter.appendFrame([]byte("prefix"), &ev, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(frame, []byte("prefix")) {
		t.Fatalf("appendFrame overwrote what was in the buffer: %q", frame)
	}
	msgs := parseFrames(t, frame[len("prefix"):])
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], string(ev.Data)) {
		t.Fatalf("got frames %q", msgs)
	}

	big := ev
	big.Data = bytes.Repeat([]byte("x"), 3000)
	before := []byte("keep")
	got, err := testFormatter.appendFrame(before, &big, 2048)
	if err == nil || !strings.Contains(err.Error(), "exceeds max_message_size 2048") {
		t.Fatalf("oversized: got error %v", err)
	}
	if string(got) != "keep" {
		t.Fatalf("oversized: the buffer became %q, want it unchanged", got)
	}
}

// parseFrames splits octet-counted frames and fails on a bad one.
func parseFrames(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			t.Fatalf("frame without a length: %q", b)
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= 0 || sp+1+n > len(b) {
			t.Fatalf("bad frame length %q (%d bytes left)", b[:sp], len(b)-sp-1)
		}
		out = append(out, string(b[sp+1:sp+1+n]))
		b = b[sp+1+n:]
	}
	return out
}

// parseSD reads the parameters of the one SD-ELEMENT at the start of s
// and returns them with the rest of s after the element.
func parseSD(t testing.TB, s string) (map[string]string, string) {
	t.Helper()
	if !strings.HasPrefix(s, "[") {
		t.Fatalf("no structured data in %q", s)
	}
	params := map[string]string{}
	i := strings.IndexByte(s, ' ')
	for i < len(s) && s[i] == ' ' {
		eq := strings.IndexByte(s[i:], '=')
		name := s[i+1 : i+eq]
		i += eq + 2 // past `="`
		var v strings.Builder
		for s[i] != '"' {
			if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\]`, s[i+1]) >= 0 {
				i++
			}
			v.WriteByte(s[i])
			i++
		}
		params[name] = v.String()
		i++ // past the closing quote
	}
	if i >= len(s) || s[i] != ']' {
		t.Fatalf("structured data not closed in %q", s)
	}
	return params, s[i+1:]
}

func FuzzFrame(f *testing.F) {
	f.Add("019ac617-3127-7001-80a1-3c9efa1d7f43", "run-1", "host", "Compliance Finding", 4, int64(1764260000039), []byte(`{"a":1}`))
	f.Add(`a"b\c]d`, `]]]`, "bad host", "", 99, int64(-5), []byte("{\n\"ü\":\"]\\\"\"}"))
	f.Fuzz(func(t *testing.T, uid, run, host, class string, sev int, ms int64, data []byte) {
		if !utf8.ValidString(uid) || !utf8.ValidString(run) {
			t.Skip("the collector's validator lets only UTF-8 through")
		}
		ev := collector.Event{UID: uid, ClassUID: 2003, ClassName: class, SeverityID: sev, Time: ms,
			RunID: run, Host: host, Data: data}
		frame, err := testFormatter.appendFrame(nil, &ev, MaxMaxMessageSize)
		if err != nil {
			t.Skip(err)
		}
		msgs := parseFrames(t, frame)
		if len(msgs) != 1 {
			t.Fatalf("one event made %d frames", len(msgs))
		}
		// HEADER: PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, each
		// printable US-ASCII, then the structured data.
		parts := strings.SplitN(msgs[0], " ", 7)
		if len(parts) != 7 {
			t.Fatalf("header: %q", msgs[0])
		}
		for _, p := range parts[:6] {
			if !printUSASCII(p, 255) {
				t.Fatalf("header field %q is not PRINTUSASCII", p)
			}
		}
		if want := "<" + strconv.Itoa(20*8+Severity(sev)) + ">1"; parts[0] != want {
			t.Fatalf("PRI: got %s, want %s", parts[0], want)
		}
		params, rest := parseSD(t, parts[6])
		if params["event_uid"] != uid || (run != "" && params["run"] != run) || params["class_uid"] != "2003" {
			t.Fatalf("structured data %v does not give back uid %q run %q", params, uid, run)
		}
		if len(data) > 0 {
			rest = strings.TrimPrefix(rest, " ")
		}
		if rest != string(data) {
			t.Fatalf("MSG: got %q, want the event bytes %q", rest, data)
		}
	})
}
