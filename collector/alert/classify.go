package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sandtrail/sandtrail/collector"
)

// OCSF numbers the sink reads.
const (
	classProcessActivity   = 1007
	classComplianceFinding = 2003
	classDetectionFinding  = 2004
	classDeviceConfigState = 5019

	activityLaunch = 1

	complianceWarning = 2
	complianceFail    = 3

	securityLevelAtRisk      = 2
	securityLevelCompromised = 3

	processStatusFailure = 2
)

// controls are sandtrail's control names (EVENTS.md): a Detection Finding
// about one of them is folded into that control's line of the alert.
var controls = []string{"capability_bounding_set", "capabilities", "privilege_drop", "no_new_privs",
	"seccomp", "landlock", "namespaces", "rlimits", "core_dump"}

// fields are the parts of an event the sink reads; the rest is skipped.
type fields struct {
	ClassUID     int    `json:"class_uid"`
	ActivityID   int    `json:"activity_id"`
	SeverityID   int    `json:"severity_id"`
	Time         int64  `json:"time"`
	Message      string `json:"message"`
	IsAlert      *bool  `json:"is_alert"`
	StatusID     int    `json:"status_id"`
	StatusCode   string `json:"status_code"`
	StatusDetail string `json:"status_detail"`
	Metadata     struct {
		UID            string `json:"uid"`
		CorrelationUID string `json:"correlation_uid"`
		EventCode      string `json:"event_code"`
	} `json:"metadata"`
	Device struct {
		Hostname string `json:"hostname"`
	} `json:"device"`
	Policy struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"policy"`
	Process struct {
		CmdLine string `json:"cmd_line"`
	} `json:"process"`
	Compliance *struct {
		Control       string   `json:"control"`
		StatusID      int      `json:"status_id"`
		Status        string   `json:"status"`
		StatusCode    string   `json:"status_code"`
		StatusDetails []string `json:"status_details"`
	} `json:"compliance"`
	FindingInfo *struct {
		UID      string `json:"uid"`
		Title    string `json:"title"`
		Desc     string `json:"desc"`
		Analytic *struct {
			Name string `json:"name"`
		} `json:"analytic"`
	} `json:"finding_info"`
	ActionID    int `json:"action_id"`
	Remediation *struct {
		Desc string `json:"desc"`
	} `json:"remediation"`
	SecurityLevelID int    `json:"security_level_id"`
	SecurityLevel   string `json:"security_level"`
	RiskScore       *int   `json:"risk_score"`
	RiskDetails     string `json:"risk_details"`
}

// verdict is what one event means for alerting.
type verdict struct {
	trigger  bool // the event alerts on its own
	terminal bool // the run's decisions are complete (posture or launch)
	f        *fields
}

// classify decides whether an event triggers an alert:
//   - any event with is_alert true;
//   - a Compliance Finding with compliance.status_id 2 Warning (a control
//     degraded) or 3 Fail (a required control failed);
//   - a run's Device Config State Change (it has a correlation_uid) whose
//     security_level_id is 2 At Risk or 3 Compromised;
//   - a Process Activity Launch that was refused (status_id 2 Failure with
//     event_code LAUNCH_REFUSED).
//
// A run's posture and any Launch event end its gathering window.
func classify(ev *collector.Event) (verdict, error) {
	switch ev.ClassUID {
	case classProcessActivity, classComplianceFinding, classDetectionFinding, classDeviceConfigState:
	default:
		if !alertTrue(ev.Data) {
			return verdict{}, nil // the only way such an event alerts; decoding it is not needed
		}
	}
	data := ev.Data
	f := new(fields)
	if err := json.Unmarshal(data, f); err != nil {
		return verdict{}, fmt.Errorf("alert: event JSON: %w", err)
	}
	v := verdict{f: f}
	if f.IsAlert != nil && *f.IsAlert {
		v.trigger = true
	}
	switch f.ClassUID {
	case classComplianceFinding:
		if c := f.Compliance; c != nil && (c.StatusID == complianceWarning || c.StatusID == complianceFail) {
			v.trigger = true
		}
	case classDeviceConfigState:
		if f.Metadata.CorrelationUID != "" {
			v.terminal = true
			if f.SecurityLevelID == securityLevelAtRisk || f.SecurityLevelID == securityLevelCompromised {
				v.trigger = true
			}
		}
	case classProcessActivity:
		if f.ActivityID == activityLaunch {
			v.terminal = true
			if f.StatusID == processStatusFailure && f.Metadata.EventCode == "LAUNCH_REFUSED" {
				v.trigger = true
			}
		}
	}
	return v, nil
}

// control returns the control an event is about, or "": a Compliance
// Finding's compliance.control; a Detection Finding's analytic name or
// the control part of its finding uid (<run>/<control>/...), if that is
// one of sandtrail's controls.
func (f *fields) control() string {
	switch f.ClassUID {
	case classComplianceFinding:
		if f.Compliance != nil {
			return f.Compliance.Control
		}
	case classDetectionFinding:
		fi := f.FindingInfo
		if fi == nil {
			return ""
		}
		if fi.Analytic != nil && slices.Contains(controls, fi.Analytic.Name) {
			return fi.Analytic.Name
		}
		rest, ok := strings.CutPrefix(fi.UID, f.Metadata.CorrelationUID+"/")
		if name, _, _ := strings.Cut(rest, "/"); ok && slices.Contains(controls, name) {
			return name
		}
	}
	return ""
}

// title is the event's one-line description.
func (f *fields) title() string {
	if f.FindingInfo != nil && f.FindingInfo.Title != "" {
		return f.FindingInfo.Title
	}
	if f.Message != "" {
		return f.Message
	}
	return fmt.Sprintf("class %d event %s", f.ClassUID, f.Metadata.UID)
}

// alertTrue reports whether data may hold "is_alert": true: it finds every
// "is_alert" key followed by optional whitespace, a colon, optional
// whitespace and true. Inside a JSON string the key's quotes would be
// escaped, so a match is a real key (perhaps of a nested object: then the
// event is decoded for nothing, which is safe). The validator rejects keys
// that differ from OCSF's in case but accepts \u escapes in them, so any
// escape makes the answer yes.
func alertTrue(data []byte) bool {
	if bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	key := []byte(`"is_alert"`)
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		rest := bytes.TrimLeft(data, " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("true")) {
				return true
			}
		}
	}
}
