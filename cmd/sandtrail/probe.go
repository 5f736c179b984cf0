package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rs/zerolog"
	"time"

	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor/probe"
)

func runProbe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "probe", "[--json] [--emit]")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	emit := fs.Bool("emit", false, "also record the report as a Device Config State Change event (spooled, then published)")
	spoolDir := fs.String("spool", defaultSpool(), "spool directory for --emit (env "+envSpool+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep, err := probe.Probe(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.Table(e.stdout); err != nil {
		return err
	}
	if !*emit {
		return nil
	}
	em, err := emitter.New(emitter.Config{Spool: spool.Config{Dir: *spoolDir}, Host: emitter.DetectHost(), ProductVersion: buildVersion(), Logger: newLogger(e, zerolog.InfoLevel)})
	if err != nil {
		return err
	}
	ev := probeEvent(rep)
	if err := em.Trail("probe-"+newRunID()).End(ctx, ev); err != nil {
		_ = em.Close(context.Background())
		return err
	}
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = em.Close(cctx) // no publisher here: the event waits in the spool for the next sandtrail process
	fmt.Fprintf(e.stderr, "sandtrail: recorded the probe as event %s in %s\n", ev.Metadata.UID, *spoolDir)
	return nil
}

// probeEvent is the host's confinement capabilities as a Device Config
// State Change: one security_states entry per facility that is missing or
// partial.
func probeEvent(rep *probe.Report) *schema.DeviceConfigStateChange {
	ev := schema.NewDeviceConfigStateChange(schema.DeviceConfigStateChangeActivityIDCollect)
	ev.Metadata = &schema.Metadata{EventCode: "HOST_PROBE"}
	ev.Actor = &schema.Actor{Process: selfProcess()}
	ev.SecurityLevelID = schema.SecurityLevelIDSecure
	ev.SeverityID = schema.SeverityIDInformational
	missing := 0
	for _, f := range rep.Facilities {
		if f.Status == probe.Available {
			continue
		}
		missing++
		text := fmt.Sprintf("%s: %s", f.Name, f.Status)
		if f.Errno != "" {
			text += " (" + f.Errno + ")"
		}
		ev.SecurityStates = append(ev.SecurityStates, schema.SecurityState{StateID: schema.SecurityStateStateIDOther, State: text})
	}
	if missing > 0 {
		ev.SecurityLevelID = schema.SecurityLevelIDAtRisk
		ev.SeverityID = schema.SeverityIDLow
	}
	ev.Message = fmt.Sprintf("host confinement probe: %d of %d facilities available", len(rep.Facilities)-missing, len(rep.Facilities))
	ev.Unmapped = map[string]any{"sandtrail_probe": rep}
	return ev
}
