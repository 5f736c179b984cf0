package confine

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// childConfig is what a child does.
type childConfig struct {
	// Scenario: "all" (every control in order, then probes), "landlock"
	// (no_new_privs and Landlock), "seccomp" (no_new_privs and the default
	// filter), "oci" (no_new_privs and the profile in Profile), "caps"
	// (SetCapabilities), "rlimits" (SetRlimits and DisableCoreDump).
	Scenario string
	RWDir    string              // added to Landlock's read_write
	Parent   map[string]uint64   // the parent's namespaces; nil: namespaces off
	User     string              // privilege drop target, "" for the default
	Mode     policy.Mode         // the mode of the scenario's main control; "" for the default
	NoNNP    bool                // do not set no_new_privs
	Profile  string              // OCI profile path
	Log      bool                // seccomp log_denials
	Keep     []policy.Capability // capabilities kept (bounding set and sets)
	Strict   bool                // Landlock allows /usr only: not /proc
}

// childReport is what a child prints.
type childReport struct {
	Steps []Step
	Probe map[string]string // what the child can still do: "ok" or an errno name
	Final Status            // /proc/thread-self/status at the end
}

func childMain(cfgJSON string, w io.Writer) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return err
	}
	p, err := childPolicy(cfg)
	if err != nil {
		return err
	}
	r := childReport{Probe: map[string]string{}}
	switch cfg.Scenario {
	case "all":
		if r.Steps, err = applyAll(p, cfg.Parent); err != nil {
			return err
		}
		probeAll(r.Probe, cfg.RWDir)
	case "landlock":
		if !cfg.NoNNP {
			r.Steps = append(r.Steps, SetNoNewPrivs(p.NoNewPrivs))
		}
		rs, prep := PrepareLandlock(p.Landlock)
		r.Steps = append(r.Steps, prep, rs.Restrict())
		probeAll(r.Probe, cfg.RWDir)
	case "seccomp", "oci":
		var prof *policy.SeccompProfile
		if cfg.Scenario == "oci" {
			if prof, err = policy.LoadSeccompProfile(cfg.Profile); err != nil {
				return err
			}
			p.Seccomp.Profile = filepath.Base(cfg.Profile)
		}
		f, err := CompileSeccomp(p.Seccomp, prof)
		if err != nil {
			return err
		}
		r.Steps = append(r.Steps, SetNoNewPrivs(p.NoNewPrivs), f.Install(cfg.Log))
		if cfg.Scenario == "oci" {
			probeOCI(r.Probe)
		} else {
			probeAll(r.Probe, cfg.RWDir)
		}
	case "caps":
		r.Steps = SetCapabilities(p.Capabilities, p.CapabilityBoundingSet)
	case "rlimits":
		r.Steps = append(SetRlimits(p.Rlimits), DisableCoreDump(p.CoreDump))
	default:
		return fmt.Errorf("unknown scenario %q", cfg.Scenario)
	}
	if r.Final, err = ReadStatus(); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(r)
}

// childPolicy is the default policy with the scenario's changes.
func childPolicy(cfg childConfig) (*policy.Policy, error) {
	p := policy.Default()
	p.Namespaces.Mode = policy.Required
	if cfg.Parent == nil {
		p.Namespaces.Mode = policy.Off
	}
	if cfg.Strict {
		p.Landlock.ReadOnly, p.Landlock.Execute = []string{"/usr"}, []string{"/usr"}
	}
	if cfg.RWDir != "" {
		p.Landlock.ReadWrite = append(p.Landlock.ReadWrite, cfg.RWDir)
	}
	if len(cfg.Keep) > 0 {
		p.CapabilityBoundingSet.Keep = cfg.Keep
		p.Capabilities.Keep = cfg.Keep
	}
	if cfg.User != "" {
		p.PrivilegeDrop.User, p.PrivilegeDrop.Group = cfg.User, cfg.User
		p.PrivilegeDrop.WhenUnprivileged = policy.UnprivilegedSwitch
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return nil, err
	}
	p.Rlimits.Limits = map[string]policy.Limit{"nofile": {Soft: min(1024, cur.Max), Hard: min(4096, cur.Max)}}
	if cfg.Scenario == "rlimits" {
		p.Rlimits.Limits = map[string]policy.Limit{
			"nofile": {Soft: 512, Hard: cur.Max + 1}, // a hard limit above the current one
			"fsize":  {Soft: 1 << 30, Hard: 1 << 31},
		}
	}
	if cfg.Mode != "" {
		switch cfg.Scenario {
		case "landlock":
			p.Landlock.Mode = cfg.Mode
		case "seccomp", "oci":
			p.Seccomp.Mode = cfg.Mode
		}
	}
	p.Seccomp.LogDenials = cfg.Log
	p = p.Resolve()
	return p, p.Validate()
}

// applyAll applies every control of p in the order the helper does.
func applyAll(p *policy.Policy, parent map[string]uint64) ([]Step, error) {
	var steps []Step
	steps = append(steps, VerifyNamespaces(p.Namespaces, parent)...)
	steps = append(steps, DropBoundingSet(p.CapabilityBoundingSet))
	rs, prep := PrepareLandlock(p.Landlock) // while privileged
	filter, cerr := CompileSeccomp(p.Seccomp, nil, p.CapabilityBoundingSet.Keep...)
	if cerr != nil {
		return nil, cerr
	}
	st, err := ReadStatus()
	if err != nil {
		return nil, err
	}
	uid, gid, groups, _, err := ResolveIDs(p.PrivilegeDrop, st.EUID)
	if err != nil {
		return nil, err
	}
	steps = append(steps, DropPrivileges(p.PrivilegeDrop, uid, gid, groups, p.Capabilities.Keep...)...)
	steps = append(steps, SetCapabilities(p.Capabilities, p.CapabilityBoundingSet)...)
	steps = append(steps, SetRlimits(p.Rlimits)...)
	steps = append(steps, DisableCoreDump(p.CoreDump))
	steps = append(steps, SetNoNewPrivs(p.NoNewPrivs))
	if rs == nil {
		steps = append(steps, prep)
	} else {
		steps = append(steps, rs.Restrict())
	}
	return append(steps, filter.Install(p.Seccomp.LogDenials)), nil
}

func result(err error) string {
	if err != nil {
		return errnoName(err)
	}
	return "ok"
}

func errno(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// probeAll tries what the controls must forbid, and one thing they allow.
func probeAll(out map[string]string, rwDir string) {
	create := func(path string) error {
		fd, err := unix.Open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
			unix.Unlink(path)
		}
		return err
	}
	pid := strconv.Itoa(os.Getpid())
	out["write_outside"] = result(create("/tmp/confine-outside-" + pid))
	if rwDir != "" {
		out["write_inside"] = result(create(filepath.Join(rwDir, "inside-"+pid)))
	}
	const keySpecSessionKeyring = -3
	_, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(keySpecSessionKeyring&0xffffffff), 0)
	out["keyctl"] = result(errno(e))
	out["unshare_user"] = result(unix.Unshare(unix.CLONE_NEWUSER))
	_, _, e = unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	out["clone3"] = result(errno(e))
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{{Effective: 1 << unix.CAP_SYS_ADMIN, Permitted: 1 << unix.CAP_SYS_ADMIN}}
	_, _, e = unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	out["capset_sys_admin"] = result(errno(e))
	_, _, e = unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
	out["setuid_0"] = result(errno(e))
}

// probeOCI tries the rules of testdata/seccomp/small.json.
func probeOCI(out map[string]string) {
	call := func(nr uintptr, args ...uintptr) string {
		a := make([]uintptr, 3)
		copy(a, args)
		r, _, e := unix.Syscall(nr, a[0], a[1], a[2])
		if e == 0 && nr == unix.SYS_SOCKET {
			unix.Close(int(r))
		}
		return result(errno(e))
	}
	out["getpriority_self"] = call(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0)
	out["getpriority_pgrp"] = call(unix.SYS_GETPRIORITY, unix.PRIO_PGRP, 0)
	var u unix.Utsname
	out["uname"] = call(unix.SYS_UNAME, uintptr(unsafe.Pointer(&u)))
	buf := make([]byte, 256)
	out["getcwd"] = call(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	out["socket_unix"] = call(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC)
	out["socket_inet"] = call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC)
}
