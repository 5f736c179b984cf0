package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/chain"
)

func TestParseEnvelope(t *testing.T) {
	got, err := ParseEnvelope([]byte(` {"class_uid": 2004, "unmapped": {"a": [1, {"time": 5}], "s": "}\"{"},
		"metadata": {"uid": "u-1", "correlation_uid": "r\u00e9n", "sequence": 3.0, "event_code": "X", "product": {"name": "n"}},
		"time": 1.764e12, "severity_id": 4, "severity": "High", "class_name": "Detection Finding",
		"device": {"os": {"name": "Linux"}, "hostname": "h1"}, "message": "line\nbreak"}`))
	want := Envelope{UID: "u-1", Run: "rén", Seq: 3, EventCode: "X", Time: 1764000000000, ClassUID: 2004, ClassName: "Detection Finding",
		SeverityID: 4, Severity: "High", Host: "h1", Message: "line\nbreak"}
	if err != nil || got != want {
		t.Errorf("ParseEnvelope = %+v, %v; want %+v", got, err, want)
	}
	// Every golden event parses, with its time.
	files, _ := filepath.Glob("../testdata/events/valid/*/*.json")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if e, err := ParseEnvelope(b); err != nil || e.Time == 0 || e.ClassUID == 0 || e.UID == "" {
			t.Errorf("%s: %+v, %v", f, e, err)
		}
	}
	for _, bad := range []string{``, `[]`, `{"time":"x"}`, `{"class_uid":1}`, `{"time":1.5}`, `{"time":1,`, `{"time":1,"a":[}`, `{"time":1 "a":2}`} {
		if _, err := ParseEnvelope([]byte(bad)); err == nil {
			t.Errorf("ParseEnvelope(%q) succeeded", bad)
		}
	}
}

func TestFilterSubjects(t *testing.T) {
	tests := []struct {
		f    Filter
		want []string
	}{
		{Filter{}, []string{"sandtrail.events.>"}},
		{Filter{Run: "r", Since: time.Now()}, []string{"sandtrail.events.>"}},
		{Filter{Classes: []int{2004, 2004}}, []string{"sandtrail.events.2004.>"}},
		// 99 (Other) has no rank: a minimum never hides it.
		{Filter{MinSeverity: 5}, []string{"sandtrail.events.*.5.>", "sandtrail.events.*.6.>", "sandtrail.events.*.99.>"}},
		{Filter{Classes: []int{1007}, MinSeverity: 6, Hosts: []string{"Web-1.Example.com", "web-1_example_com", "db"}},
			[]string{"sandtrail.events.1007.6.db", "sandtrail.events.1007.6.web-1_example_com",
				"sandtrail.events.1007.99.db", "sandtrail.events.1007.99.web-1_example_com"}},
	}
	for _, tt := range tests {
		got, err := tt.f.subjects()
		if err != nil {
			t.Errorf("%s: subjects: %v", tt.f, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: subjects (-want +got):\n%s", tt.f, diff)
		}
	}
	many := Filter{Classes: make([]int, 50), MinSeverity: 1}
	for i := range many.Classes {
		many.Classes[i] = i + 1
	}
	if err := many.Validate(); err == nil || !strings.Contains(err.Error(), "select fewer") {
		t.Errorf("Validate of 300 subject filters = %v", err)
	}
	for _, bad := range []Filter{{MinSeverity: 7}, {Classes: []int{0}}, {Hosts: []string{""}}, {Since: time.Unix(10, 0), Until: time.Unix(5, 0)}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted it", bad)
		}
	}
}

func TestSummary(t *testing.T) {
	s := NewSummary(chain.VerifierConfig{})
	evs := genEvents(30)
	for i, e := range evs {
		m := Message{StreamSeq: uint64(i + 1), Subject: e.subject(), Data: e.json()}
		m.Envelope, _ = ParseEnvelope(m.Data)
		s.Add(&m)
	}
	runs := s.Runs()
	if len(runs) != 10 {
		t.Fatalf("%d runs, want 10", len(runs))
	}
	r := runs[0]
	if r.Run != "run-0" || r.Events != 3 || r.MaxSeverity != 1 || len(r.Hosts) != 1 || len(r.Classes) != 3 ||
		!r.First.Equal(evs[0].Time) || !r.Last.Equal(evs[20].Time) || r.Trail.Status != chain.StatusUnchained {
		t.Errorf("first run = %+v", r)
	}
}
