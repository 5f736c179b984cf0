package supervisor

import (
	"github.com/sandtrail/sandtrail/supervisor/confine"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// HelperCommand is the hidden subcommand under which the sandtrail binary
// runs as the helper: cmd/sandtrail dispatches it to HelperMain.
const HelperCommand = "__sandtrail-helper"

// The helper's file descriptors: the plan and the go/abort decision come
// on planFD; steps, state, the target's start and its exit go back on
// statusFD. Both are close-on-exec: the target inherits neither.
const (
	planFD   = 3
	statusFD = 4
)

// Decisions the parent sends once the events are durable.
const (
	decisionGo    = 'g'
	decisionAbort = 'a'
)

// plan is everything the helper needs, sent as one JSON line.
type plan struct {
	Policy    *policy.Policy    `json:"policy"`
	Path      string            `json:"path"` // resolved target executable
	Argv      []string          `json:"argv"`
	Env       []string          `json:"env"`
	UID       int               `json:"uid"`
	GID       int               `json:"gid"`
	Groups    []int             `json:"groups"`
	SwitchIDs bool              `json:"switch_ids"`
	ParentNS  map[string]uint64 `json:"parent_ns"` // the supervisor's namespace inodes
	Parent    int               `json:"parent"`    // the supervisor's pid, to detect its death
	// NamespaceErr, when set, says the namespaces could not be created
	// (errno name); the helper reports the requested kinds as failed.
	NamespaceErr string `json:"namespace_err,omitempty"`
}

// exitInfo is how the target ended.
type exitInfo struct {
	Code   int `json:"code"`             // exit status, or 128+signal
	Signal int `json:"signal,omitempty"` // the signal that killed it
}

// message is one line the helper writes on statusFD.
type message struct {
	Step      *confine.Step   `json:"step,omitempty"`
	Final     *confine.Status `json:"final,omitempty"`
	Ready     bool            `json:"ready,omitempty"`
	Started   int             `json:"started,omitempty"` // the target's pid (in the helper's pid namespace)
	Exited    *exitInfo       `json:"exited,omitempty"`
	ExecError string          `json:"exec_error,omitempty"`
	Errno     string          `json:"errno,omitempty"`
	Fatal     string          `json:"fatal,omitempty"`
}
