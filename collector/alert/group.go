package alert

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Alert is one run's operator alert: the element of [Payload].Alerts in
// webhook mode, and the source of the Alertmanager alert.
type Alert struct {
	// Key identifies the alert across resends: the run id, or
	// "event:<metadata.uid>" for an alerting event that has no run.
	Key string `json:"key"`
	// Name is "SandboxRefused" (a launch was refused or a required control
	// failed), "SandboxDegraded" (controls degraded, or the run's posture
	// At Risk), or "SandtrailAlert" (any other event with is_alert true,
	// for example a runtime denial).
	Name   string `json:"alertname"`
	Status string `json:"status"` // always "firing"
	Run    string `json:"run,omitempty"`
	Host   string `json:"host,omitempty"`
	Policy string `json:"policy,omitempty"`
	// Severity is the highest OCSF severity of the run's alerting events,
	// as its lower-case caption ("medium", "high", "critical"...), and
	// SeverityID its id.
	Severity    string `json:"severity"`
	SeverityID  int    `json:"severity_id"`
	Summary     string `json:"summary"`
	Description string `json:"description"`
	Remediation string `json:"remediation,omitempty"`
	// Controls are the degraded or failed controls, with their reasons and
	// remediation.
	Controls []Control `json:"controls,omitempty"`
	// Findings are the alerting events, one line each.
	Findings []Finding `json:"findings"`
	// Posture is the run's posture, if its event was gathered.
	Posture *Posture `json:"posture,omitempty"`
	// LaunchRefused says the sandboxed command was not run.
	LaunchRefused bool `json:"launch_refused"`
	// Update is true when the alert repeats an alert of the same Key that
	// was already sent, because later events of the run added to it.
	Update bool `json:"update"`
	// StartsAt is the time of the earliest alerting event.
	StartsAt time.Time `json:"starts_at"`
	// URL is Config.GeneratorURL with the run id appended, if configured.
	URL string `json:"url,omitempty"`
	// Labels are Config.Labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// Control is one degraded or failed control of a run.
type Control struct {
	Name        string `json:"control"`
	Status      string `json:"status"`                // "Warning" (degraded) or "Fail" (required and failed)
	Code        string `json:"status_code,omitempty"` // the errno name, for example EPERM
	Reason      string `json:"reason,omitempty"`
	Remediation string `json:"remediation,omitempty"`
}

// Finding is one alerting event.
type Finding struct {
	EventUID   string `json:"event_uid"`
	ClassUID   int    `json:"class_uid"`
	EventCode  string `json:"event_code,omitempty"`
	SeverityID int    `json:"severity_id"`
	Title      string `json:"title"`
}

// Posture is a run's Device Config State Change.
type Posture struct {
	SecurityLevel string `json:"security_level"`
	RiskScore     *int   `json:"risk_score,omitempty"`
	Details       string `json:"details,omitempty"`
}

// group gathers the alerting events of one run. Once its alert is sent
// (or suppressed) it is remembered for a while, so that its events coming
// back are recognised and that later events of the run extend it.
type group struct {
	key      string
	opened   time.Time // when the sink saw the run's first alerting event
	complete bool      // the run's posture or launch event arrived
	uids     map[string]struct{}
	triggers []*fields
	posture  *fields
	launch   *fields // a refused launch

	sig   string    // signature of the alert last sent or suppressed; "" before
	until time.Time // when a finished group is forgotten
}

func newGroup(key string, now time.Time) *group {
	return &group{key: key, opened: now, uids: map[string]struct{}{}}
}

// reopen starts a new gathering for a run whose alert already went out:
// the new group holds everything the old one had, so that an update
// describes the whole run.
func (g *group) reopen(now time.Time) *group {
	n := *g
	n.opened = now
	n.uids = maps.Clone(g.uids)
	n.triggers = slices.Clone(g.triggers)
	return &n
}

// signature captures what an alert says: its name, its controls and the
// alerting events that are not about a control, the posture or the launch.
// A reopened group whose signature did not change has no news.
func (g *group) signature() string {
	a := g.alert("", nil)
	var b strings.Builder
	b.WriteString(a.Name)
	for _, c := range a.Controls {
		fmt.Fprintf(&b, "|%s=%s", c.Name, c.Status)
	}
	other := 0
	for _, f := range g.triggers {
		if f.control() == "" && f.ClassUID != classDeviceConfigState && f.ClassUID != classProcessActivity {
			other++
		}
	}
	fmt.Fprintf(&b, "|%d", other)
	return b.String()
}

// add gathers one event; a redelivered event is gathered once.
func (g *group) add(uid string, v verdict) {
	if _, ok := g.uids[uid]; ok {
		return
	}
	g.uids[uid] = struct{}{}
	if v.terminal {
		g.complete = true
	}
	f := v.f
	if f.ClassUID == classDeviceConfigState && f.Metadata.CorrelationUID != "" {
		g.posture = f
	}
	if v.trigger {
		g.triggers = append(g.triggers, f)
		if f.ClassUID == classProcessActivity {
			g.launch = f
		}
	}
}

var severities = map[int]string{0: "unknown", 1: "informational", 2: "low", 3: "medium", 4: "high", 5: "critical", 6: "fatal", 99: "other"}

// rank orders OCSF severities; 0 Unknown and 99 Other rank lowest.
func rank(id int) int {
	if id >= 1 && id <= 6 {
		return id
	}
	return 0
}

// alert summarises the group.
func (g *group) alert(generatorURL string, labels map[string]string) Alert {
	a := Alert{Key: g.key, Status: "firing", Labels: labels, Update: g.sig != ""}
	if !strings.HasPrefix(g.key, "event:") {
		a.Run = g.key
	}
	var byName = map[string]int{}
	var remediations []string
	for _, f := range g.triggers {
		if a.Host == "" {
			a.Host = f.Device.Hostname
		}
		if a.Policy == "" {
			a.Policy = f.Policy.Name
		}
		if rank(f.SeverityID) > rank(a.SeverityID) || a.Findings == nil {
			a.SeverityID = f.SeverityID
		}
		t := time.UnixMilli(f.Time).UTC()
		if f.Time > 0 && (a.StartsAt.IsZero() || t.Before(a.StartsAt)) {
			a.StartsAt = t
		}
		a.Findings = append(a.Findings, Finding{EventUID: f.Metadata.UID, ClassUID: f.ClassUID,
			EventCode: f.Metadata.EventCode, SeverityID: f.SeverityID, Title: f.title()})
		name := f.control()
		if name == "" {
			continue
		}
		i, ok := byName[name]
		if !ok {
			i = len(a.Controls)
			byName[name] = i
			a.Controls = append(a.Controls, Control{Name: name})
		}
		c := &a.Controls[i]
		if cf := f.Compliance; cf != nil && f.ClassUID == classComplianceFinding {
			c.Status = cf.Status
			c.Code = first(cf.StatusCode, c.Code)
			if len(cf.StatusDetails) > 0 {
				c.Reason = cf.StatusDetails[0]
			}
			c.Reason = first(c.Reason, f.Message)
		}
		if f.ClassUID == classDetectionFinding {
			if c.Status == "" {
				c.Status = "Warning"
				if f.ActionID == 2 { // Denied: the control was required
					c.Status = "Fail"
				}
			}
			c.Code = first(c.Code, f.StatusCode)
			if f.FindingInfo != nil {
				c.Reason = first(c.Reason, f.FindingInfo.Desc)
			}
			c.Reason = first(c.Reason, f.Message)
		}
		if f.Remediation != nil && f.Remediation.Desc != "" {
			c.Remediation = f.Remediation.Desc
		}
	}
	if a.StartsAt.IsZero() {
		a.StartsAt = g.opened.UTC()
	}
	a.Severity = severities[a.SeverityID]
	if a.Severity == "" {
		a.Severity = "unknown"
	}
	if p := g.posture; p != nil {
		a.Posture = &Posture{SecurityLevel: p.SecurityLevel, RiskScore: p.RiskScore, Details: p.RiskDetails}
	}
	failed, degraded := 0, 0
	for _, c := range a.Controls {
		if c.Status == "Fail" {
			failed++
		} else {
			degraded++
		}
		if c.Remediation != "" {
			remediations = append(remediations, c.Name+": "+c.Remediation)
		}
	}
	for _, f := range g.triggers {
		if f.control() == "" && f.Remediation != nil && f.Remediation.Desc != "" {
			remediations = append(remediations, f.Remediation.Desc)
		}
	}
	a.Remediation = strings.Join(remediations, "\n")
	a.LaunchRefused = g.launch != nil
	where := a.Host
	if a.Policy != "" {
		where += " (policy " + a.Policy + ")"
	}
	switch {
	case a.LaunchRefused || failed > 0:
		a.Name = "SandboxRefused"
		a.Summary = fmt.Sprintf("sandbox refused on %s: %s", where, controlList(a.Controls, "Fail", "required control failed"))
	case degraded > 0 || (a.Posture != nil && g.posture.SecurityLevelID >= securityLevelAtRisk):
		a.Name = "SandboxDegraded"
		if degraded > 0 {
			a.Summary = fmt.Sprintf("sandbox degraded on %s: %s", where, controlList(a.Controls, "", "degraded"))
		} else {
			a.Summary = fmt.Sprintf("sandbox %s on %s: %s", strings.ToLower(a.Posture.SecurityLevel), where, a.Posture.Details)
		}
	default:
		a.Name = "SandtrailAlert"
		a.Summary = a.Findings[0].Title
		if n := len(a.Findings) - 1; n > 0 {
			a.Summary += fmt.Sprintf(" (and %d more)", n)
		}
	}
	a.Description = g.describe(&a)
	if generatorURL != "" {
		a.URL = generatorURL + url.QueryEscape(a.Run)
	}
	return a
}

// controlList is "seccomp (ENOSYS), landlock (EOPNOTSUPP) degraded" for
// the controls with the status (any, if status is empty).
func controlList(cs []Control, status, what string) string {
	var parts []string
	for _, c := range cs {
		if status != "" && c.Status != status {
			continue
		}
		s := c.Name
		if c.Code != "" {
			s += " (" + c.Code + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "launch refused"
	}
	return what + ": " + strings.Join(parts, ", ")
}

// describe is the alert's multi-line description.
func (g *group) describe(a *Alert) string {
	var b strings.Builder
	if a.Run != "" {
		fmt.Fprintf(&b, "run %s", a.Run)
	} else {
		b.WriteString("event without a run")
	}
	if a.Host != "" {
		fmt.Fprintf(&b, " on %s", a.Host)
	}
	if a.Policy != "" {
		fmt.Fprintf(&b, ", policy %s", a.Policy)
	}
	b.WriteString(":\n")
	for _, c := range a.Controls {
		fmt.Fprintf(&b, "- %s: %s", c.Name, c.Status)
		if c.Code != "" {
			fmt.Fprintf(&b, " (%s)", c.Code)
		}
		if c.Reason != "" {
			fmt.Fprintf(&b, ": %s", c.Reason)
		}
		b.WriteString("\n")
	}
	if l := g.launch; l != nil {
		fmt.Fprintf(&b, "- launch refused: %s\n", first(l.StatusDetail, l.Message))
	}
	if p := a.Posture; p != nil {
		fmt.Fprintf(&b, "- posture: %s", p.SecurityLevel)
		if p.RiskScore != nil {
			fmt.Fprintf(&b, ", risk score %d", *p.RiskScore)
		}
		if p.Details != "" {
			fmt.Fprintf(&b, ": %s", p.Details)
		}
		b.WriteString("\n")
	}
	for _, f := range g.triggers {
		if f.control() == "" && f.ClassUID != classDeviceConfigState && f.ClassUID != classProcessActivity {
			fmt.Fprintf(&b, "- %s\n", first(f.Message, f.title()))
		}
	}
	fmt.Fprintf(&b, "%d alerting event(s)", len(a.Findings))
	return b.String()
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
