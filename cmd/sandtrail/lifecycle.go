package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/sandtrail/sandtrail/schema"
)

// selfProcess describes this sandtrail process for actor.process.
func selfProcess() *schema.Process {
	exe, _ := os.Executable()
	p := &schema.Process{
		PID:     schema.Ptr(os.Getpid()),
		Name:    "sandtrail",
		CmdLine: strings.Join(os.Args, " "),
		EUID:    schema.Ptr(os.Geteuid()),
		EGID:    schema.Ptr(os.Getegid()),
	}
	if exe != "" {
		p.File = &schema.File{Name: filepath.Base(exe), Path: exe, TypeID: schema.FileTypeIDRegularFile}
	}
	return p
}

// lifecycleEvent is an Application Lifecycle event for a daemon (server,
// collector) starting or stopping.
func lifecycleEvent(app string, activity schema.ApplicationLifecycleActivityID, ok bool, code, msg string) *schema.ApplicationLifecycle {
	ev := schema.NewApplicationLifecycle(activity)
	ev.SeverityID = schema.SeverityIDInformational
	ev.StatusID = schema.ApplicationLifecycleStatusIDSuccess
	if !ok {
		ev.SeverityID = schema.SeverityIDMedium
		ev.StatusID = schema.ApplicationLifecycleStatusIDFailure
	}
	ev.Message = msg
	ev.Actor = &schema.Actor{Process: selfProcess()}
	exe, _ := os.Executable()
	ev.App = &schema.Product{Name: app, VendorName: "sandtrail", Version: buildVersion(), Path: exe}
	ev.Metadata = &schema.Metadata{EventCode: code}
	return ev
}
