package sinktest

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/schema"
)

// Events returns n valid events of one new run, as the collector hands them
// to a sink: Compliance Findings (class 2003) with fresh metadata.uid
// values, sequence 1 to n, and every routing field of collector.Event
// filled in. Each event passes schema.Validate.
func Events(n int) []collector.Event { return events(n, 0) }

// LargeEvent returns one valid event of about size bytes (its message is
// padded), for receivers with size limits. size is at most 1 MiB, the
// validator's limit.
func LargeEvent(size int) collector.Event { return events(1, size)[0] }

func events(n, size int) []collector.Event {
	run := "run-" + newUID()
	base := time.Now().UnixMilli()
	out := make([]collector.Event, n)
	for i := range out {
		ev := complianceFinding(run, i+1, base+int64(i))
		if size > 0 {
			data, _ := ev.AppendJSON(nil)
			if pad := size - len(data); pad > 0 {
				ev.Message += " " + strings.Repeat("x", pad-1)
			}
		}
		data, err := ev.AppendJSON(nil)
		if err != nil {
			panic(fmt.Sprintf("sinktest: encode: %v", err))
		}
		if err := schema.Validate(data); err != nil {
			panic(fmt.Sprintf("sinktest: generated an invalid event: %v", err))
		}
		out[i] = collector.Event{
			UID:        ev.Metadata.UID,
			ClassUID:   ev.ClassUID(),
			ClassName:  ev.ClassName(),
			SeverityID: int(ev.SeverityID),
			Time:       ev.Time,
			RunID:      run,
			Host:       ev.Device.Hostname,
			Subject:    ev.Metadata.LogName,
			Data:       data,
		}
	}
	return out
}

func newUID() string {
	u, err := uuid.NewV7()
	if err != nil {
		panic(err)
	}
	return u.String()
}

func complianceFinding(run string, seq int, ms int64) *schema.ComplianceFinding {
	const host = "sinktest-host"
	ev := schema.NewComplianceFinding(schema.ComplianceFindingActivityIDCreate)
	ev.SeverityID = schema.SeverityIDInformational
	ev.Time = ms
	ev.Message = fmt.Sprintf("capability_bounding_set applied: bounding set cleared (sinktest event %d)", seq)
	ev.ActionID = schema.ActionIDAllowed
	ev.DispositionID = schema.DispositionIDAllowed
	ev.IsAlert = schema.Ptr(false)
	ev.StatusID = schema.ComplianceFindingStatusIDNew
	ev.Policy = &schema.Policy{Name: "sinktest", Version: "1", UID: strings.Repeat("ab", 32)}
	ev.Actor = &schema.Actor{Process: &schema.Process{Name: "sandtrail", PID: schema.Ptr(4242), CmdLine: "sandtrail run -- true"}}
	ev.Compliance = &schema.Compliance{
		Control:           "capability_bounding_set",
		Standards:         []string{"sandtrail-policy"},
		StatusID:          schema.ComplianceStatusIDPass,
		ControlParameters: []schema.KeyValueObject{{Name: "requested", Value: "none"}, {Name: "effective", Value: "none"}},
	}
	ev.FindingInfo = &schema.FindingInfo{Title: "Capability bounding set cleared", UID: run + "/capability_bounding_set", Types: []string{"Sandbox Control"}}
	ev.Device = &schema.Device{
		TypeID: schema.DeviceTypeIDServer, Hostname: host, UID: "4f9c2b1e8d7a4c3b9e0f1a2b3c4d5e6f",
		OS: &schema.OS{Name: "Linux", TypeID: schema.OSTypeIDLinux, KernelRelease: "6.18.0"},
	}
	subject := bus.EventSubject(ev.ClassUID(), int(ev.SeverityID), host)
	ev.Metadata = &schema.Metadata{
		Version:        schema.Version,
		UID:            newUID(),
		Product:        &schema.Product{Name: "sandtrail", VendorName: "sandtrail", Version: "sinktest"},
		CorrelationUID: run,
		Sequence:       schema.Ptr(seq),
		EventCode:      "CAPBSET_APPLIED",
		LogName:        subject,
		Profiles:       []string{"host", "security_control", "linux/linux_users"},
		Extensions:     []schema.Extension{{Name: "linux", UID: "1", Version: schema.Version}},
	}
	return ev
}
