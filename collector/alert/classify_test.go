package alert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/collector"
)

// TestClassify runs the repository's example events through classify.
func TestClassify(t *testing.T) {
	want := map[string]verdict{ // by file; anything not listed alerts on nothing and ends nothing
		"compliance_finding/capbset-warning":                {trigger: true},
		"compliance_finding/landlock-fail":                  {trigger: true},
		"detection_finding/capbset-degraded":                {trigger: true},
		"detection_finding/launch-refused":                  {trigger: true},
		"detection_finding/seccomp-denied-alert":            {trigger: true},
		"device_config_state_change/posture-at-risk":        {trigger: true, terminal: true},
		"device_config_state_change/posture-protection-off": {trigger: true, terminal: true},
		"device_config_state_change/posture-secure":         {terminal: true},
		"device_config_state_change/host-probe":             {}, // belongs to no run
		"process_activity/launch":                           {terminal: true},
		"process_activity/launch-failure":                   {trigger: true, terminal: true},
	}
	paths, err := filepath.Glob("../../testdata/events/valid/*/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(p), "../../testdata/events/valid/"), ".json")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			ClassUID int `json:"class_uid"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			t.Fatal(err)
		}
		v, err := classify(&collector.Event{ClassUID: head.ClassUID, Data: data})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := want[name]
		if v.trigger != w.trigger || v.terminal != w.terminal {
			t.Errorf("%s: trigger %v terminal %v, want %v %v", name, v.trigger, v.terminal, w.trigger, w.terminal)
		}
	}
}

func TestControl(t *testing.T) {
	for _, tc := range []struct {
		data, want string
	}{
		{`{"class_uid":2003,"compliance":{"control":"seccomp"}}`, "seccomp"},
		{`{"class_uid":2004,"finding_info":{"analytic":{"name":"landlock"}}}`, "landlock"},
		{`{"class_uid":2004,"metadata":{"correlation_uid":"r/1"},"finding_info":{"uid":"r/1/no_new_privs/degraded"}}`, "no_new_privs"},
		{`{"class_uid":2004,"finding_info":{"analytic":{"name":"seccomp_denied_ptrace"},"uid":"x"}}`, ""},
		{`{"class_uid":5019}`, ""},
	} {
		var f fields
		if err := json.Unmarshal([]byte(tc.data), &f); err != nil {
			t.Fatal(err)
		}
		if got := f.control(); got != tc.want {
			t.Errorf("control(%s) = %q, want %q", tc.data, got, tc.want)
		}
	}
}

func FuzzAlertTrue(f *testing.F) {
	for _, s := range []string{`{"is_alert":true}`, `{"is_alert" :  true}`, `{"is_alert":false}`,
		`{"message":"\"is_alert\":true"}`, `{"a":{"is_alert":true},"is_alert":false}`, "{\n  \"is_alert\":\n\ttrue\n}", `{"is\u005falert":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Keys as the validator reads them: exact, escapes decoded (it
		// rejects other spellings and duplicates).
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) != nil {
			return
		}
		var alert bool
		if json.Unmarshal(top["is_alert"], &alert) == nil && alert && !alertTrue(data) {
			t.Fatalf("alertTrue missed is_alert true in %q", data)
		}
	})
}
