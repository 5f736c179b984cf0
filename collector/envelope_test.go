package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/schema"
)

// decodeEnvelope is the reference: encoding/json.
func decodeEnvelope(t testing.TB, data []byte) Event {
	t.Helper()
	var v struct {
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
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return Event{UID: v.Metadata.UID, ClassUID: v.ClassUID, ClassName: v.ClassName, SeverityID: v.SeverityID,
		Time: v.Time, RunID: v.Metadata.CorrelationUID, Host: v.Device.Hostname, Data: data}
}

func corpus(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("../testdata/events/valid/*/*.json")
	bench, _ := filepath.Glob("../testdata/bench/compliance_*.json")
	var out [][]byte
	for _, f := range append(files, bench...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(b) == nil {
			out = append(out, b)
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d valid events in the corpus", len(out))
	}
	return out
}

func TestReadEnvelope(t *testing.T) {
	for _, data := range corpus(t) {
		got, err := readEnvelope(data)
		if err != nil {
			t.Fatalf("%.60s: %v", data, err)
		}
		want := decodeEnvelope(t, data)
		got.Data, want.Data = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	}
	// Escapes, whitespace, nesting with the same key names.
	data := []byte(` { "metadata" : { "product": {"uid": "not this"}, "uid" : "a\"b\u00e9" } , "device": {"os": {"hostname": "no"}, "hostname": "h\n"}, "time": 5, "class_uid": 2003 } `)
	got, err := readEnvelope(data)
	if err != nil || got.UID != "a\"b\u00e9" || got.Host != "h\n" || got.Time != 5 || got.ClassUID != 2003 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func FuzzReadEnvelope(f *testing.F) {
	for _, data := range corpus(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if schema.Validate(data) != nil {
			_, _ = readEnvelope(data) // it must not panic on what it is never given
			return
		}
		got, err := readEnvelope(data)
		if err != nil {
			t.Fatalf("valid event: %v", err)
		}
		want := decodeEnvelope(t, data)
		got.Data, want.Data = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
	})
}

func TestDeadLetterUID(t *testing.T) {
	stored := time.UnixMilli(1764263000123)
	a := &deadLetter{reason: reasonSyntax, stream: "S", seq: 7, stored: stored}
	b := &deadLetter{reason: reasonSyntax, stream: "S", seq: 7, stored: stored, sink: "other"}
	c := &deadLetter{reason: reasonRejected, stream: "S", seq: 7, stored: stored, sink: "x"}
	if a.msgID() != "dlq-syntax-S-7" || c.msgID() != "dlq-rejected-x-S-7" {
		t.Fatalf("msg ids %s %s", a.msgID(), c.msgID())
	}
	if a.uid() != b.uid() || a.uid() == c.uid() {
		t.Fatal("uid must follow the message id")
	}
	u, err := uuid.Parse(a.uid())
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("uid %s: version %d variant %v, %v", a.uid(), u.Version(), u.Variant(), err)
	}
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec).UnixMilli(); got != stored.UnixMilli() {
		t.Fatalf("uid time %d, want the stored time %d", got, stored.UnixMilli())
	}
}

func TestRawData(t *testing.T) {
	for _, tc := range []struct {
		in             string
		limit          int
		raw            string
		trunc, encoded bool
	}{
		{"hello", 10, "hello", false, false},
		{"héllo", 2, "h", true, false}, // never half a rune
		{"\xff\xfe", 10, "//4=", false, true},
		{"\xffabcdef", 4, "/2Fi", true, true},
	} {
		raw, trunc, enc := rawData([]byte(tc.in), tc.limit)
		if raw != tc.raw || trunc != tc.trunc || enc != tc.encoded {
			t.Errorf("rawData(%q, %d) = %q %v %v, want %q %v %v", tc.in, tc.limit, raw, trunc, enc, tc.raw, tc.trunc, tc.encoded)
		}
	}
	if got := clip(strings.Repeat("é", 10), 9); got != "ééé..." {
		t.Errorf("clip: %q, want whole runes and a mark", got)
	}
}
