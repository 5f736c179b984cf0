package schema_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/schema"
)

// The valid corpus is generated from the typed events below: TestCorpusGolden
// marshals each one, validates it and compares it with its golden file, so a
// golden can never drift from the types. Run
//
//	go test ./schema -run TestCorpusGolden -update
//
// to rewrite the goldens after a deliberate change.
var update = flag.Bool("update", false, "rewrite testdata/events/valid from the typed fixtures")

// corpusDir is testdata/events, seen from the schema package directory.
const corpusDir = "../testdata/events"

// A fixture is one golden event: testdata/events/valid/<class_name>/<name>.json.
type fixture struct {
	name  string
	event schema.Event
}

// fixtures returns every golden event. The values are fixed (times, uids,
// pids, hashes) so that the goldens are stable.
func fixtures() []fixture {
	return []fixture{
		// Run A (policy build-runner): the bounding set degraded, the rest applied.
		{"capbset-warning", cfCapbsetWarning()},
		{"capbset-degraded", dfCapbsetDegraded()},
		{"capabilities-pass", cfCapabilitiesPass()},
		{"privilege-drop-pass", cfPrivilegeDropPass()},
		{"no-new-privs-pass", cfNoNewPrivsPass()},
		{"seccomp-pass", cfSeccompPass()},
		{"landlock-pass", cfLandlockPass()},
		{"namespaces-pass", cfNamespacesPass()},
		{"core-dump-pass", cfCoreDumpPass()},
		{"posture-at-risk", dcscPostureDegraded()},
		{"launch", paLaunch()},
		{"set-user-id", paSetUserID()},
		{"seccomp-ptrace-errno", kaPtraceDenied()},
		{"seccomp-denied-alert", dfSeccompAlert()},
		{"landlock-write-etc", faWriteEtcDenied()},
		{"landlock-read-ssh-key", faReadSSHKeyDenied()},
		{"landlock-connect-tcp", naConnectRefused()},
		{"terminate-exit-code", paTerminateExit()},
		// Run B (policy ci-untrusted): a required control failed, launch refused.
		{"landlock-fail", cfLandlockFail()},
		{"launch-refused", dfLaunchRefused()},
		{"launch-failure", paLaunchFailure()},
		// Run C (policy dev-shell): seccomp off by policy, killed at its time limit.
		{"seccomp-disabled", cfSeccompDisabled()},
		{"rlimits-pass", cfRlimitsPass()},
		{"posture-protection-off", dcscPostureDisabled()},
		{"terminate-signal", paTerminateSignal()},
		// Run D (policy nightly-fuzz): every control as required.
		{"posture-secure", dcscPostureSecure()},
		{"seccomp-bpf-kill", kaBPFKilled()},
		{"seccomp-unshare-errno", kaUnshareDenied()},
		{"terminate-sigsys", paTerminateSigsys()},
		{"landlock-create-tmp", faCreateDenied()},
		{"landlock-bind-tcp", naBindRefused()},
		{"landlock-connect-tcp6", naConnect6Refused()},
		// sandtrail probe, and the daemons.
		{"host-probe", dcscHostProbe()},
		{"server-start", alServerStart()},
		{"server-stop", alServerStop()},
		{"collector-start", alCollectorStart()},
		{"collector-stop-drain-failed", alCollectorStopFailed()},
		{"dlq-schema-violation", aeSchemaViolation()},
		{"dlq-truncated-json", aeTruncated()},
		{"dlq-unknown-class", aeUnknownClass()},
	}
}

// Facts shared by the corpus: one build host, one collector host, one build.
const (
	productVersion = "0.9.2"
	buildHost      = "build-07.ci.example.net"
	buildMachineID = "8e2f9c4b7a1d4e0f9b3c5d6e7f801234"
	collectorHost  = "collector-01.example.net"
	collectorMID   = "0c51a7d2e94b4f6a8d3e2b1c0f9e8d7a"
	kernelRelease  = "6.8.0-49-generic"
)

// uuidV7 returns a time-ordered UUID (RFC 9562 version 7) for the
// millisecond ms. The random bits are replaced by tag and seq, so the result
// is deterministic and unique within the corpus.
func uuidV7(ms int64, tag uint16, seq int) string {
	node := uint64(0x3c9e5b1d7f42) ^ uint64(tag)<<24 ^ uint64(seq)
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x",
		uint64(ms)>>16, uint64(ms)&0xffff, seq&0xfff, 0x8000|tag&0x3fff, node&0xffffffffffff)
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// A run is one sandbox run: its id is every event's correlation_uid.
type run struct {
	host     string
	machine  string // /etc/machine-id of the host
	tag      uint16
	t0       int64 // ms, when the supervisor started
	policy   string
	version  string
	rules    string // the canonical policy text; policy.uid is its SHA-256
	cmdLine  string
	workDir  string // of the sandboxed process
	superPID int
	childPID int
}

var (
	runA = &run{host: buildHost, machine: buildMachineID, tag: 0xa1, t0: 1764260000000, policy: "build-runner", version: "3",
		rules:    "capability_bounding_set{keep=[],mode=best_effort};capabilities{keep=[]};privilege_drop{user=65534,group=65534};no_new_privs;seccomp{profile=build-default,action=errno};landlock{abi=4,mode=required};namespaces{mount,pid,ipc,uts,net,cgroup};core_dump=off",
		cmdLine:  "sandtrail run --policy /etc/sandtrail/policies/build-runner.toml -- make -j8 test",
		workDir:  "/builds/acme/api",
		superPID: 4120, childPID: 4127}
	runB = &run{host: "build-12.ci.example.net", machine: "5d0e6a93c1f24b7e8a9d0c2b4e6f8a13", tag: 0xb2, t0: 1764261800000, policy: "ci-untrusted", version: "7",
		rules:    "capability_bounding_set{keep=[],mode=required};no_new_privs;seccomp{profile=strict,action=kill_process};landlock{abi=4,mode=required};namespaces{user,mount,pid,net}",
		cmdLine:  "sandtrail run --policy /etc/sandtrail/policies/ci-untrusted.toml -- python3 -m pytest tests/",
		workDir:  "/builds/acme/contrib",
		superPID: 5226, childPID: 5233}
	runC = &run{host: buildHost, machine: buildMachineID, tag: 0xc3, t0: 1764263600000, policy: "dev-shell", version: "1",
		rules:    "capability_bounding_set{keep=[]};no_new_privs;seccomp{mode=off};landlock{abi=4,mode=best_effort};rlimits{nofile=4096,nproc=512,as=8GiB,cpu=1800s}",
		cmdLine:  "sandtrail run --policy /etc/sandtrail/policies/dev-shell.toml --timeout 30m -- bash -l",
		workDir:  "/home/dev",
		superPID: 6001, childPID: 6008}
	runD = &run{host: buildHost, machine: buildMachineID, tag: 0xd4, t0: 1764288000000, policy: "nightly-fuzz", version: "12",
		rules:    "capability_bounding_set{keep=[],mode=required};capabilities{keep=[]};privilege_drop{user=65534,group=65534};no_new_privs;seccomp{profile=fuzz,action=kill_process};landlock{abi=4,mode=required};namespaces{user,mount,pid,ipc,uts,net,cgroup};rlimits{as=4GiB};core_dump=off",
		cmdLine:  "sandtrail run --policy /etc/sandtrail/policies/nightly-fuzz.toml -- ./parser.fuzz -max_total_time=3600 corpus/",
		workDir:  "/srv/fuzz",
		superPID: 7710, childPID: 7716}
)

// id is the run id: the correlation_uid of every event of the run.
func (r *run) id() string { return uuidV7(r.t0, r.tag, 0) }

// uid is the metadata.uid of the run's event with sequence seq.
func (r *run) uid(seq int) string { return uuidV7(r.at(seq), r.tag, seq) }

// at is the time of the run's event with sequence seq: the decisions before
// the launch (sequence 1 to 12) are a few milliseconds apart, what happens
// at run time about half a minute apart.
func (r *run) at(seq int) int64 {
	if seq <= 12 {
		return r.t0 + 35 + int64(seq)*4
	}
	return r.at(12) + int64(seq-12)*37_000 + int64(seq)
}

func (r *run) findingUID(control string) string { return r.id() + "/" + control }

func (r *run) policyObj() *schema.Policy {
	return &schema.Policy{
		Name:      r.policy,
		Version:   r.version,
		UID:       sha256Hex(r.rules),
		Desc:      "sandtrail policy " + r.policy + " v" + r.version,
		IsApplied: schema.Ptr(true),
	}
}

// envelope is what every event carries besides its class attributes.
type envelope struct {
	run       *run // nil for events outside a sandbox run
	seq       int
	at        int64 // ms; the run's clock when run is set and at is 0
	uid       string
	host      string
	sev       schema.SeverityID
	code      string
	container bool   // container or PID-namespace data is filled
	logName   string // default: the events subject of the class, severity and host
}

func stamp(ev schema.Event, e envelope) {
	b := ev.EventBase()
	if e.host == "" && e.run != nil {
		e.host = e.run.host
	}
	if e.run != nil {
		if e.at == 0 {
			e.at = e.run.at(e.seq)
		}
		if e.uid == "" {
			e.uid = uuidV7(e.at, e.run.tag, e.seq)
		}
	}
	if e.logName == "" {
		e.logName = fmt.Sprintf("sandtrail.events.%d.%d.%s", ev.ClassUID(), e.sev, strings.ReplaceAll(e.host, ".", "_"))
	}
	profiles := []string{"host", "security_control", "linux/linux_users"}
	if e.container {
		profiles = append(profiles, "container")
	}
	m := &schema.Metadata{
		Version:    schema.Version,
		Product:    &schema.Product{Name: "sandtrail", VendorName: "sandtrail", Version: productVersion},
		UID:        e.uid,
		EventCode:  e.code,
		LogName:    e.logName,
		Profiles:   profiles,
		Extensions: []schema.Extension{{Name: "linux", UID: "1", Version: "1.8.0"}},
	}
	if e.run != nil {
		m.CorrelationUID = e.run.id()
		m.Sequence = schema.Ptr(e.seq)
	}
	b.Metadata = m
	b.Time = e.at
	b.SeverityID = e.sev
	b.TimezoneOffset = schema.Ptr(0)
}

func device(host, machineID string) *schema.Device {
	return &schema.Device{
		TypeID:   schema.DeviceTypeIDServer,
		Hostname: host,
		UID:      machineID,
		OS:       &schema.OS{Name: "Linux", TypeID: schema.OSTypeIDLinux, KernelRelease: kernelRelease},
	}
}

func buildDevice() *schema.Device { return device(buildHost, buildMachineID) }

func (r *run) device() *schema.Device { return device(r.host, r.machine) }

func exe(path string) *schema.File {
	return &schema.File{Name: filepath.Base(path), Path: path, TypeID: schema.FileTypeIDRegularFile}
}

func cpid(created int64, pid int) string { return uuidV7(created, 0x0c, pid) }

// systemd -> gitlab-runner: the ancestry of every supervisor on the build host.
func gitlabRunner() *schema.Process {
	return &schema.Process{
		Name: "gitlab-runner", PID: schema.Ptr(1187), CPID: cpid(1764170000000, 1187), CreatedTime: 1764170000000,
		CmdLine: "/usr/bin/gitlab-runner run --working-directory /home/gitlab-runner --config /etc/gitlab-runner/config.toml",
		File:    exe("/usr/bin/gitlab-runner"),
		User:    &schema.User{Name: "root", UID: "0", TypeID: schema.UserTypeIDAdmin},
		ParentProcess: &schema.Process{
			Name: "systemd", PID: schema.Ptr(1), CPID: cpid(1764169990000, 1), CreatedTime: 1764169990000,
			CmdLine: "/sbin/init splash", File: exe("/usr/lib/systemd/systemd"),
			User: &schema.User{Name: "root", UID: "0", TypeID: schema.UserTypeIDAdmin},
		},
	}
}

// supervisor is actor.process: sandtrail itself.
func (r *run) supervisor() *schema.Process {
	return &schema.Process{
		Name: "sandtrail", PID: schema.Ptr(r.superPID), CPID: cpid(r.t0, r.superPID), CreatedTime: r.t0,
		CmdLine: r.cmdLine, File: exe("/usr/local/bin/sandtrail"),
		User:          &schema.User{Name: "root", UID: "0", TypeID: schema.UserTypeIDAdmin},
		EUID:          schema.Ptr(0),
		EGID:          schema.Ptr(0),
		ParentProcess: gitlabRunner(),
	}
}

// child is the sandboxed process, before or without its privilege drop.
func (r *run) child(name, path, cmdLine string) *schema.Process {
	created := r.t0 + 31
	return &schema.Process{
		Name: name, PID: schema.Ptr(r.childPID), CPID: cpid(created, r.childPID), CreatedTime: created,
		CmdLine: cmdLine, File: exe(path), Sandbox: r.policy,
		WorkingDirectory: r.workDir,
		ParentProcess:    r.supervisor(),
	}
}

// dropped is the sandboxed process after the privilege drop.
func (r *run) dropped(name, path, cmdLine string) *schema.Process {
	p := r.child(name, path, cmdLine)
	p.User = &schema.User{Name: "nobody", UID: "65534", TypeID: schema.UserTypeIDService}
	p.Group = &schema.Group{Name: "nogroup", UID: "65534"}
	p.EUID = schema.Ptr(65534)
	p.EGID = schema.Ptr(65534)
	return p
}

func (r *run) make() *schema.Process {
	return r.dropped("make", "/usr/bin/make", "make -j8 test")
}

// Compliance findings.

type control struct {
	name, desc string
	status     schema.CheckStatusID
	statusText string // for status 99 only
	code       string // errno name when the control is not Pass
	params     []schema.KeyValueObject
	checks     []schema.Check
	details    []string
	reqs       []string
}

func (r *run) compliance(seq int, sev schema.SeverityID, code string, c control, title string) *schema.ComplianceFinding {
	ev := schema.NewComplianceFinding(schema.ComplianceFindingActivityIDCreate)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: code})
	ev.ActionID = schema.ActionIDAllowed
	ev.DispositionID = schema.DispositionIDAllowed
	ev.IsAlert = schema.Ptr(false)
	ev.Message = title
	ev.Policy = r.policyObj()
	ev.Actor = &schema.Actor{Process: r.supervisor()}
	ev.Device = r.device()
	ev.Compliance = &schema.Compliance{
		Control:           c.name,
		Desc:              c.desc,
		Category:          "Linux confinement",
		Standards:         []string{"sandtrail policy " + r.policy + " v" + r.version},
		Requirements:      c.reqs,
		ControlParameters: c.params,
		Checks:            c.checks,
		StatusID:          c.status,
		Status:            c.statusText,
		StatusCode:        c.code,
		StatusDetails:     c.details,
	}
	ev.FindingInfo = &schema.FindingInfo{
		UID:         r.findingUID(c.name),
		Title:       title,
		CreatedTime: r.at(seq),
		Types:       []string{"Sandbox Control"},
		Analytic:    &schema.Analytic{Name: c.name, TypeID: schema.AnalyticTypeIDRule, UID: "sandtrail/" + c.name},
	}
	return ev
}

func kv(name string, values ...string) schema.KeyValueObject {
	if len(values) == 1 {
		return schema.KeyValueObject{Name: name, Value: values[0]}
	}
	return schema.KeyValueObject{Name: name, Values: values}
}

func check(r *run, controlName, part, desc string) schema.Check {
	return schema.Check{
		Name: part, UID: r.findingUID(controlName) + "/" + part, Desc: desc,
		StatusID: schema.CheckStatusIDPass, SeverityID: schema.SeverityIDInformational,
	}
}

func cfCapbsetWarning() schema.Event {
	r := runA
	ev := r.compliance(1, schema.SeverityIDHigh, "CAPBSET_DEGRADED", control{
		name: "capability_bounding_set", status: schema.CheckStatusIDWarning, code: "EPERM",
		desc: "Drop every capability the policy does not keep from the bounding set of the sandboxed process.",
		reqs: []string{"capability_bounding_set.keep = []", "capability_bounding_set.mode = best_effort"},
		params: []schema.KeyValueObject{
			kv("mode", "best_effort"),
			kv("requested", "none"),
			kv("effective", "cap_setgid", "cap_setuid", "cap_net_bind_service", "cap_sys_admin"),
			kv("effective_mask", "0x00000000002004c0"),
		},
		details: []string{"prctl(PR_CAPBSET_DROP, CAP_SETGID): EPERM: the supervisor lacks CAP_SETPCAP"},
	}, "capability_bounding_set degraded: 4 capabilities left in the bounding set (EPERM)")
	ev.StatusCode = "EPERM"
	ev.StatusID = schema.ComplianceFindingStatusIDNew
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfCapabilitiesPass() schema.Event {
	r := runA
	ev := r.compliance(3, schema.SeverityIDInformational, "CAPS_APPLIED", control{
		name: "capabilities", status: schema.CheckStatusIDPass,
		desc: "Clear the effective, permitted, inheritable and ambient sets after the uid switch.",
		reqs: []string{"capabilities.keep = []"},
		params: []schema.KeyValueObject{
			kv("requested", "none"),
			kv("effective", "0x0000000000000000"),
			kv("permitted", "0x0000000000000000"),
			kv("inheritable", "0x0000000000000000"),
			kv("ambient", "0x0000000000000000"),
		},
		checks: []schema.Check{
			check(r, "capabilities", "effective", "CapEff is empty"),
			check(r, "capabilities", "permitted", "CapPrm is empty"),
			check(r, "capabilities", "inheritable", "CapInh is empty"),
			check(r, "capabilities", "ambient", "CapAmb is empty"),
		},
	}, "capabilities applied as required: every set empty")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfPrivilegeDropPass() schema.Event {
	r := runA
	ev := r.compliance(4, schema.SeverityIDInformational, "PRIVDROP_APPLIED", control{
		name: "privilege_drop", status: schema.CheckStatusIDPass,
		desc: "Switch the sandboxed process to an unprivileged user and group, with no supplementary groups.",
		reqs: []string{"privilege_drop.user = 65534", "privilege_drop.group = 65534"},
		params: []schema.KeyValueObject{
			kv("requested_uid", "65534"), kv("requested_gid", "65534"), kv("requested_groups", "none"),
			kv("effective_uid", "65534"), kv("effective_gid", "65534"), kv("effective_groups", "none"),
		},
		checks: []schema.Check{
			check(r, "privilege_drop", "setgroups", "setgroups(0, NULL) cleared the supplementary groups"),
			check(r, "privilege_drop", "setgid", "setresgid(65534, 65534, 65534)"),
			check(r, "privilege_drop", "setuid", "setresuid(65534, 65534, 65534)"),
		},
	}, "privilege_drop applied as required: uid 65534, gid 65534, no groups")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfNoNewPrivsPass() schema.Event {
	r := runA
	ev := r.compliance(5, schema.SeverityIDInformational, "NNP_APPLIED", control{
		name: "no_new_privs", status: schema.CheckStatusIDPass,
		desc: "Set no_new_privs so that execve cannot grant privileges (setuid bits, file capabilities).",
		reqs: []string{"no_new_privs = true"},
		params: []schema.KeyValueObject{
			kv("requested", "1"), kv("effective", "1"),
		},
	}, "no_new_privs applied as required")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfSeccompPass() schema.Event {
	r := runA
	ev := r.compliance(6, schema.SeverityIDInformational, "SECCOMP_APPLIED", control{
		name: "seccomp", status: schema.CheckStatusIDPass,
		desc: "Install the policy's seccomp filter; denied system calls return an errno.",
		reqs: []string{"seccomp.profile = build-default", "seccomp.action = errno"},
		params: []schema.KeyValueObject{
			kv("mode", "required"),
			kv("requested_profile", "build-default"),
			kv("effective_mode", "SECCOMP_MODE_FILTER"),
			kv("default_action", "SECCOMP_RET_ERRNO(EPERM)"),
			kv("filter_sha256", sha256Hex("build-default-bpf")),
			kv("denied_syscalls", "ptrace", "mount", "umount2", "bpf", "kexec_load", "init_module", "finit_module", "keyctl", "add_key", "perf_event_open"),
		},
	}, "seccomp applied as required: filter build-default, 10 system calls denied")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfLandlockPass() schema.Event {
	r := runA
	ev := r.compliance(7, schema.SeverityIDInformational, "LANDLOCK_APPLIED", control{
		name: "landlock", status: schema.CheckStatusIDPass,
		desc: "Restrict file system and TCP access with a Landlock ruleset.",
		reqs: []string{"landlock.abi = 4", "landlock.mode = required"},
		params: []schema.KeyValueObject{
			kv("mode", "required"),
			kv("requested_abi", "4"),
			kv("kernel_abi", "4"),
			kv("handled_access_fs", "execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file", "make_char", "make_dir", "make_reg", "make_sock", "make_fifo", "make_block", "make_sym", "refer", "truncate"),
			kv("handled_access_net", "bind_tcp", "connect_tcp"),
			kv("rules", "/builds/acme/api:rw", "/usr:rx", "/etc/ssl/certs:r", "/tmp:rw", "connect_tcp:3128"),
		},
	}, "landlock applied as required: ABI 4, 5 rules")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

// cfNamespacesPass declares the container profile: the sandboxed process has
// a PID in its own PID namespace.
func cfNamespacesPass() schema.Event {
	r := runA
	c := control{
		name: "namespaces", status: schema.CheckStatusIDPass,
		desc: "Run the sandboxed process in new namespaces, one check per namespace kind.",
		reqs: []string{"namespaces = [mount, pid, ipc, uts, net, cgroup]"},
		params: []schema.KeyValueObject{
			kv("requested", "mount", "pid", "ipc", "uts", "net", "cgroup"),
			kv("effective", "mount", "pid", "ipc", "uts", "net", "cgroup"),
		},
	}
	for _, ns := range []struct{ kind, inode string }{
		{"mount", "4026532842"}, {"pid", "4026532845"}, {"ipc", "4026532844"},
		{"uts", "4026532843"}, {"net", "4026532847"}, {"cgroup", "4026532846"},
	} {
		c.checks = append(c.checks, check(r, "namespaces", ns.kind, "new "+ns.kind+" namespace, inode "+ns.inode))
	}
	ev := r.compliance(8, schema.SeverityIDInformational, "NAMESPACES_APPLIED", c, "namespaces applied as required: 6 of 6")
	stamp(ev, envelope{run: r, seq: 8, sev: schema.SeverityIDInformational, code: "NAMESPACES_APPLIED", container: true})
	p := r.make()
	p.NamespacePID = schema.Ptr(1)
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: p}}
	return ev
}

func cfCoreDumpPass() schema.Event {
	r := runA
	ev := r.compliance(9, schema.SeverityIDInformational, "COREDUMP_APPLIED", control{
		name: "core_dump", status: schema.CheckStatusIDPass,
		desc: "Forbid core dumps: RLIMIT_CORE 0 and the process not dumpable.",
		reqs: []string{"core_dump = off"},
		params: []schema.KeyValueObject{
			kv("requested", "off"), kv("rlimit_core", "0 0"), kv("dumpable", "0"),
		},
		checks: []schema.Check{
			check(r, "core_dump", "rlimit_core", "setrlimit(RLIMIT_CORE, {0, 0})"),
			check(r, "core_dump", "dumpable", "prctl(PR_SET_DUMPABLE, 0)"),
		},
	}, "core_dump applied as required")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.make()}}
	return ev
}

func cfLandlockFail() schema.Event {
	r := runB
	ev := r.compliance(1, schema.SeverityIDHigh, "LANDLOCK_FAILED", control{
		name: "landlock", status: schema.CheckStatusIDFail, code: "EOPNOTSUPP",
		desc: "Restrict file system and TCP access with a Landlock ruleset.",
		reqs: []string{"landlock.abi = 4", "landlock.mode = required"},
		params: []schema.KeyValueObject{
			kv("mode", "required"),
			kv("requested_abi", "4"),
			kv("kernel_abi", "none"),
			kv("lsm", "lockdown,capability,yama,apparmor"),
		},
		details: []string{"landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): EOPNOTSUPP: Landlock is not in the kernel's LSM list"},
	}, "landlock failed and is required: sandbox refused (EOPNOTSUPP)")
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusCode = "EOPNOTSUPP"
	ev.StatusID = schema.ComplianceFindingStatusIDNew
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.child("python3", "/usr/bin/python3.12", "python3 -m pytest tests/")}}
	ev.FindingInfo.RelatedEvents = []schema.RelatedEvent{
		related(r.uid(2), 200401, "Detection Finding: Create", "launch refused: required control landlock failed"),
		related(r.uid(3), 100701, "Process Activity: Launch", "python3 not launched"),
	}
	return ev
}

// cfSeccompDisabled is a control that the policy turned off: status 99
// "Disabled", so that the SIEM still sees it.
func cfSeccompDisabled() schema.Event {
	r := runC
	ev := r.compliance(1, schema.SeverityIDLow, "SECCOMP_DISABLED", control{
		name: "seccomp", status: schema.CheckStatusIDOther, statusText: "Disabled",
		desc: "Install the policy's seccomp filter.",
		reqs: []string{"seccomp.mode = off"},
		params: []schema.KeyValueObject{
			kv("mode", "off"),
			kv("effective_mode", "SECCOMP_MODE_DISABLED"),
		},
		details: []string{"seccomp is off in policy dev-shell: every system call is allowed"},
	}, "seccomp disabled by policy dev-shell")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.child("bash", "/usr/bin/bash", "bash -l")}}
	return ev
}

func cfRlimitsPass() schema.Event {
	r := runC
	ev := r.compliance(2, schema.SeverityIDInformational, "RLIMITS_APPLIED", control{
		name: "rlimits", status: schema.CheckStatusIDPass,
		desc: "Set the policy's resource limits before exec.",
		reqs: []string{"rlimits.nofile = 4096", "rlimits.nproc = 512", "rlimits.as = 8GiB", "rlimits.cpu = 1800s"},
		params: []schema.KeyValueObject{
			kv("RLIMIT_NOFILE", "4096 4096"),
			kv("RLIMIT_NPROC", "512 512"),
			kv("RLIMIT_AS", "8589934592 8589934592"),
			kv("RLIMIT_CPU", "1800 1800"),
		},
		checks: []schema.Check{
			check(r, "rlimits", "RLIMIT_NOFILE", "4096"),
			check(r, "rlimits", "RLIMIT_NPROC", "512"),
			check(r, "rlimits", "RLIMIT_AS", "8 GiB"),
			check(r, "rlimits", "RLIMIT_CPU", "1800 s"),
		},
	}, "rlimits applied as required: 4 limits")
	ev.Evidences = []schema.Evidences{{Name: "sandboxed process", Process: r.child("bash", "/usr/bin/bash", "bash -l")}}
	return ev
}

func related(uid string, typeUID int64, typeName, title string) schema.RelatedEvent {
	return schema.RelatedEvent{UID: uid, TypeUID: schema.Ptr(typeUID), TypeName: typeName, Title: title, Product: &schema.Product{Name: "sandtrail", VendorName: "sandtrail"}}
}

// Detection findings.

func (r *run) detection(seq int, sev schema.SeverityID, code string) *schema.DetectionFinding {
	ev := schema.NewDetectionFinding(schema.ComplianceFindingActivityIDCreate)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: code})
	ev.IsAlert = schema.Ptr(true)
	ev.StatusID = schema.ComplianceFindingStatusIDNew
	ev.ConfidenceID = schema.ConfidenceIDHigh
	ev.Policy = r.policyObj()
	ev.Actor = &schema.Actor{Process: r.supervisor()}
	ev.Device = r.device()
	return ev
}

// dfCapbsetDegraded is the largest event of the corpus: a degraded control,
// with its probes as evidence, observables, and a sandboxed process whose
// parent chain is three deep.
func dfCapbsetDegraded() schema.Event {
	r := runA
	ev := r.detection(2, schema.SeverityIDHigh, "CAPBSET_DEGRADED")
	ev.ActionID = schema.ActionIDAllowed
	ev.DispositionID = schema.DispositionIDAllowed
	ev.StatusCode = "EPERM"
	ev.StatusDetail = "prctl(PR_CAPBSET_DROP, CAP_SETGID): operation not permitted"
	ev.Message = "capability_bounding_set degraded on build-07.ci.example.net: cap_setgid, cap_setuid, cap_net_bind_service and cap_sys_admin stay in the bounding set of make (pid 4127)"
	ev.FindingInfo = &schema.FindingInfo{
		UID:           r.findingUID("capability_bounding_set") + "/degraded",
		Title:         "Capability bounding set not reduced (EPERM)",
		Desc:          "Policy build-runner asks for an empty bounding set in best_effort mode. The supervisor runs without CAP_SETPCAP, so PR_CAPBSET_DROP failed and the sandboxed process was started with 4 capabilities left in its bounding set.",
		CreatedTime:   r.at(2),
		FirstSeenTime: r.at(1),
		LastSeenTime:  r.at(2),
		Types:         []string{"Sandbox Degraded"},
		DataSources:   []string{"prctl(2)", "/proc/self/status"},
		Analytic:      &schema.Analytic{Name: "capability_bounding_set", TypeID: schema.AnalyticTypeIDRule, UID: "sandtrail/CAPBSET_DEGRADED"},
		RelatedEvents: []schema.RelatedEvent{
			related(r.uid(1), 200301, "Compliance Finding: Create", "capability_bounding_set degraded"),
		},
	}
	child := r.make()
	ev.Evidences = []schema.Evidences{
		{
			Name: "capability probe", UID: r.uid(2) + "/probe",
			Data: map[string]any{
				"probe":             "/proc/self/status",
				"cap_last_cap":      40,
				"supervisor_capeff": "00000000002004c0",
				"supervisor_capbnd": "00000000002004c0",
				"has_cap_setpcap":   false,
			},
		},
		{
			Name: "PR_CAPBSET_DROP", UID: r.uid(2) + "/drop",
			Data: map[string]any{
				"syscall":   "prctl",
				"option":    "PR_CAPBSET_DROP",
				"attempted": []string{"cap_setgid", "cap_setuid", "cap_net_bind_service", "cap_sys_admin"},
				"errno":     "EPERM",
				"retval":    -1,
			},
		},
		{Name: "sandboxed process", Process: child},
		{Name: "supervisor", Actor: &schema.Actor{Process: r.supervisor(), User: &schema.User{Name: "root", UID: "0", TypeID: schema.UserTypeIDAdmin}}},
	}
	ev.Remediation = &schema.Remediation{
		Desc: "sandtrail needs CAP_SETPCAP to drop capabilities from the bounding set. Add CAP_SETPCAP to CapabilityBoundingSet= of the unit that starts it (gitlab-runner.service), or set capability_bounding_set.mode = \"required\" in policy build-runner to refuse to run instead of degrading.",
		References: []string{
			"https://man7.org/linux/man-pages/man2/PR_CAPBSET_DROP.2const.html",
			"https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#CapabilityBoundingSet=",
		},
	}
	ev.Observables = []schema.Observable{
		{Name: "device.hostname", TypeID: schema.ObservableTypeIDHostname, Value: r.host},
		{Name: "actor.process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "sandtrail"},
		{Name: "actor.process.pid", TypeID: schema.ObservableTypeIDProcessID, Value: "4120"},
		{Name: "evidences.process.pid", TypeID: schema.ObservableTypeIDProcessID, Value: "4127"},
		{Name: "evidences.process.cmd_line", TypeID: schema.ObservableTypeIDCommandLine, Value: "make -j8 test"},
		{Name: "evidences.process.parent_process.parent_process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "gitlab-runner"},
	}
	return ev
}

func dfSeccompAlert() schema.Event {
	r := runA
	ev := r.detection(14, schema.SeverityIDMedium, "SECCOMP_DENIED")
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusCode = "EPERM"
	ev.Message = "seccomp denied ptrace(PTRACE_ATTACH) to integration.test (pid 4311) in sandbox build-runner"
	ev.FindingInfo = &schema.FindingInfo{
		UID:         r.findingUID("seccomp") + "/denied/ptrace",
		Title:       "Sandboxed process attempted ptrace",
		Desc:        "ptrace is denied by seccomp profile build-default; a process that attaches to another process in a build is unusual.",
		CreatedTime: r.at(14),
		Types:       []string{"Sandbox Violation"},
		Analytic:    &schema.Analytic{Name: "seccomp_denied_ptrace", TypeID: schema.AnalyticTypeIDRule, UID: "sandtrail/SECCOMP_DENIED/ptrace"},
		RelatedEvents: []schema.RelatedEvent{
			related(r.uid(13), 100304, "Kernel Activity: Invoke", "seccomp denied ptrace"),
		},
	}
	ev.Evidences = []schema.Evidences{
		{Name: "denied system call", Process: r.testBinary(), Data: map[string]any{
			"syscall": "ptrace", "nr": 101, "arch": "AUDIT_ARCH_X86_64", "args": []string{"PTRACE_ATTACH", "4312"}, "action": "SECCOMP_RET_ERRNO", "errno": "EPERM",
		}},
	}
	ev.Observables = []schema.Observable{
		{Name: "evidences.process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "integration.test"},
		{Name: "evidences.process.pid", TypeID: schema.ObservableTypeIDProcessID, Value: "4311"},
		{Name: "device.hostname", TypeID: schema.ObservableTypeIDHostname, Value: r.host},
	}
	return ev
}

func dfLaunchRefused() schema.Event {
	r := runB
	ev := r.detection(2, schema.SeverityIDHigh, "LAUNCH_REFUSED")
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusCode = "EOPNOTSUPP"
	ev.StatusDetail = "landlock_create_ruleset: operation not supported"
	ev.Message = "sandbox refused: required control landlock failed on build-12.ci.example.net (EOPNOTSUPP); python3 -m pytest tests/ was not run"
	ev.FindingInfo = &schema.FindingInfo{
		UID:         r.findingUID("landlock") + "/refused",
		Title:       "Sandbox refused: required control landlock failed",
		Desc:        "Policy ci-untrusted requires Landlock ABI 4, and this kernel does not enable Landlock.",
		CreatedTime: r.at(2),
		Types:       []string{"Sandbox Refused"},
		Analytic:    &schema.Analytic{Name: "landlock", TypeID: schema.AnalyticTypeIDRule, UID: "sandtrail/LAUNCH_REFUSED"},
		RelatedEvents: []schema.RelatedEvent{
			related(r.uid(1), 200301, "Compliance Finding: Create", "landlock failed"),
			related(r.uid(3), 100701, "Process Activity: Launch", "python3 not launched"),
		},
	}
	ev.Evidences = []schema.Evidences{
		{Name: "landlock probe", Data: map[string]any{
			"probe": "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)", "errno": "EOPNOTSUPP",
			"lsm": "lockdown,capability,yama,apparmor", "kernel_release": kernelRelease,
		}},
		{Name: "refused process", Process: r.child("python3", "/usr/bin/python3.12", "python3 -m pytest tests/")},
	}
	ev.Remediation = &schema.Remediation{
		Desc:       "Enable Landlock: add landlock to the lsm= kernel parameter (for example lsm=landlock,lockdown,yama,integrity,apparmor) and reboot. Until then, jobs with policy ci-untrusted cannot run on this host.",
		References: []string{"https://docs.kernel.org/userspace-api/landlock.html"},
	}
	ev.Observables = []schema.Observable{
		{Name: "device.hostname", TypeID: schema.ObservableTypeIDHostname, Value: r.host},
		{Name: "evidences.process.cmd_line", TypeID: schema.ObservableTypeIDCommandLine, Value: "python3 -m pytest tests/"},
	}
	return ev
}

// Device Config State Change: the posture of a run, and the host probe.

func (r *run) posture(seq int, sev schema.SeverityID, code string) *schema.DeviceConfigStateChange {
	ev := schema.NewDeviceConfigStateChange(schema.DeviceConfigStateChangeActivityIDLog)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: code})
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.Policy = r.policyObj()
	ev.Actor = &schema.Actor{Process: r.supervisor()}
	ev.Device = r.device()
	return ev
}

func dcscPostureDegraded() schema.Event {
	r := runA
	ev := r.posture(10, schema.SeverityIDMedium, "POSTURE_AT_RISK")
	ev.SecurityLevelID = schema.SecurityLevelIDAtRisk
	ev.SecurityStates = []schema.SecurityState{{StateID: schema.SecurityStateStateIDProtectionMalfunction}}
	ev.RiskScore = schema.Ptr(35)
	ev.RiskLevelID = schema.Ptr(schema.RiskLevelIDMedium)
	ev.RiskDetails = "capability_bounding_set degraded (EPERM); 8 of 9 controls applied as required"
	ev.Message = "sandbox posture of run " + r.id() + ": At Risk"
	return ev
}

func dcscPostureDisabled() schema.Event {
	r := runC
	ev := r.posture(3, schema.SeverityIDLow, "POSTURE_AT_RISK")
	ev.SecurityLevelID = schema.SecurityLevelIDAtRisk
	ev.SecurityStates = []schema.SecurityState{
		{StateID: schema.SecurityStateStateIDProtectionOff},
		{StateID: schema.SecurityStateStateIDPolicyMismatch},
	}
	ev.RiskScore = schema.Ptr(60)
	ev.RiskLevelID = schema.Ptr(schema.RiskLevelIDHigh)
	ev.RiskDetails = "seccomp disabled by policy dev-shell; landlock best_effort"
	ev.Message = "sandbox posture of run " + r.id() + ": At Risk"
	return ev
}

func dcscPostureSecure() schema.Event {
	r := runD
	ev := r.posture(10, schema.SeverityIDInformational, "POSTURE_SECURE")
	ev.SecurityLevelID = schema.SecurityLevelIDSecure
	ev.RiskScore = schema.Ptr(0)
	// Info is risk_level_id 0: the typed field cannot encode it yet, see
	// TestOptionalEnumZeroIsEncoded.
	ev.RiskLevelID = schema.Ptr(schema.RiskLevelIDInfo)
	ev.RiskDetails = "9 of 9 controls applied as required"
	ev.Message = "sandbox posture of run " + r.id() + ": Secure"
	return ev
}

func dcscHostProbe() schema.Event {
	ev := schema.NewDeviceConfigStateChange(schema.DeviceConfigStateChangeActivityIDCollect)
	const at = 1764255600000
	stamp(ev, envelope{at: at, uid: uuidV7(at, 0x9b, 1), host: buildHost, sev: schema.SeverityIDLow, code: "HOST_PROBE"})
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.Device = buildDevice()
	ev.Actor = &schema.Actor{Process: &schema.Process{
		Name: "sandtrail", PID: schema.Ptr(3999), CPID: cpid(at-120, 3999), CreatedTime: at - 120,
		CmdLine: "sandtrail probe --emit", File: exe("/usr/local/bin/sandtrail"),
		User: &schema.User{Name: "root", UID: "0", TypeID: schema.UserTypeIDAdmin},
		EUID: schema.Ptr(0), EGID: schema.Ptr(0),
		Xattributes: map[string]any{
			"landlock_abi":                          4,
			"seccomp_actions_avail":                 "kill_process kill_thread trap errno user_notif trace log allow",
			"unprivileged_userns_clone":             1,
			"apparmor_restrict_unprivileged_userns": 1,
			"cap_last_cap":                          40,
		},
	}}
	ev.SecurityLevelID = schema.SecurityLevelIDAtRisk
	ev.SecurityStates = []schema.SecurityState{
		{StateID: schema.SecurityStateStateIDProtectionOff},
		{StateID: schema.SecurityStateStateIDOther, State: "Landlock ABI 4 of 6: no signal or abstract socket scoping"},
	}
	ev.RiskScore = schema.Ptr(20)
	ev.RiskLevelID = schema.Ptr(schema.RiskLevelIDLow)
	ev.RiskDetails = "user namespaces: restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns=1); landlock: partial (ABI 4)"
	ev.Message = "host probe of build-07.ci.example.net: 2 facilities missing or partial"
	return ev
}

// Process Activity.

func (r *run) processEvent(activity schema.ProcessActivityActivityID, seq int, sev schema.SeverityID, code string, p *schema.Process) *schema.ProcessActivity {
	ev := schema.NewProcessActivity(activity)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: code})
	ev.Actor = &schema.Actor{Process: r.supervisor()}
	ev.Device = r.device()
	ev.Process = p
	ev.Policy = r.policyObj()
	return ev
}

// lastOfRun marks the run's last event: count is the number of events the
// run produced (its sequence), from the supervisor's start to now.
func (r *run) lastOfRun(b *schema.Base) {
	b.Count = b.Metadata.Sequence
	b.StartTime = r.t0
	b.EndTime = b.Time
}

func paLaunch() schema.Event {
	r := runA
	ev := r.processEvent(schema.ProcessActivityActivityIDLaunch, 11, schema.SeverityIDInformational, "PROCESS_LAUNCHED", r.make())
	ev.LaunchTypeID = schema.LaunchTypeIDSpawn
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.ActionID = schema.ActionIDAllowed
	ev.DispositionID = schema.DispositionIDAllowed
	ev.Message = "launched make -j8 test (pid 4127) in sandbox build-runner"
	ev.Observables = []schema.Observable{
		{Name: "process.pid", TypeID: schema.ObservableTypeIDProcessID, Value: "4127"},
		{Name: "process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "make"},
		{Name: "process.cmd_line", TypeID: schema.ObservableTypeIDCommandLine, Value: "make -j8 test"},
		{Name: "actor.process.name", TypeID: schema.ObservableTypeIDProcessName, Value: "sandtrail"},
		{Name: "device.hostname", TypeID: schema.ObservableTypeIDHostname, Value: r.host},
	}
	return ev
}

// paSetUserID declares the container profile: the process is PID 1 of its
// PID namespace.
func paSetUserID() schema.Event {
	r := runA
	p := r.make()
	p.NamespacePID = schema.Ptr(1)
	p.Xattributes = map[string]any{
		"cap_eff":      "0000000000000000",
		"cap_bnd":      "00000000002004c0",
		"no_new_privs": 1,
		"groups":       []int{},
	}
	ev := r.processEvent(schema.ProcessActivityActivityIDSetUserID, 12, schema.SeverityIDInformational, "PROCESS_SETUID", p)
	stamp(ev, envelope{run: r, seq: 12, sev: schema.SeverityIDInformational, code: "PROCESS_SETUID", container: true})
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.Message = "make (pid 4127) switched to uid 65534, gid 65534"
	return ev
}

func paTerminateExit() schema.Event {
	r := runA
	p := r.make()
	p.TerminatedTime = r.at(18) - 1
	ev := r.processEvent(schema.ProcessActivityActivityIDTerminate, 18, schema.SeverityIDInformational, "PROCESS_EXITED", p)
	ev.ExitCode = schema.Ptr(2)
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.StatusDetail = "exit status 2"
	ev.Duration = schema.Ptr(p.TerminatedTime - p.CreatedTime)
	ev.Message = "make (pid 4127) exited with status 2; run produced 18 events"
	r.lastOfRun(&ev.Base)
	return ev
}

func paLaunchFailure() schema.Event {
	r := runB
	p := r.child("python3", "/usr/bin/python3.12", "python3 -m pytest tests/")
	ev := r.processEvent(schema.ProcessActivityActivityIDLaunch, 3, schema.SeverityIDHigh, "LAUNCH_REFUSED", p)
	ev.LaunchTypeID = schema.LaunchTypeIDSpawn
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDFailure
	ev.StatusCode = "EOPNOTSUPP"
	ev.StatusDetail = "required control landlock failed: landlock_create_ruleset: operation not supported"
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.Message = "refused to launch python3 -m pytest tests/ in sandbox ci-untrusted: landlock failed"
	r.lastOfRun(&ev.Base)
	return ev
}

func paTerminateSignal() schema.Event {
	r := runC
	p := r.dropped("bash", "/usr/bin/bash", "bash -l")
	p.TerminatedTime = r.t0 + 30*60*1000 + 12
	ev := r.processEvent(schema.ProcessActivityActivityIDTerminate, 4, schema.SeverityIDLow, "PROCESS_KILLED", p)
	stamp(ev, envelope{run: r, seq: 4, at: p.TerminatedTime + 3, sev: schema.SeverityIDLow, code: "PROCESS_KILLED"})
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.StatusDetail = "signal: SIGKILL (9): --timeout 30m reached"
	ev.Duration = schema.Ptr(p.TerminatedTime - p.CreatedTime)
	ev.Message = "bash (pid 6008) killed by SIGKILL after the 30m time limit"
	r.lastOfRun(&ev.Base)
	return ev
}

func paTerminateSigsys() schema.Event {
	r := runD
	p := r.fuzzer()
	p.TerminatedTime = r.at(17) - 1
	ev := r.processEvent(schema.ProcessActivityActivityIDTerminate, 17, schema.SeverityIDMedium, "PROCESS_KILLED", p)
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	ev.StatusDetail = "signal: SIGSYS (31): seccomp SECCOMP_RET_KILL_PROCESS on bpf"
	ev.Duration = schema.Ptr(p.TerminatedTime - p.CreatedTime)
	ev.Message = "parser.fuzz (pid 7716) killed by SIGSYS: seccomp denied bpf"
	r.lastOfRun(&ev.Base)
	return ev
}

// Runtime denials: seccomp, Landlock. The process that was denied is the
// actor; its parent is the supervisor.

func (r *run) testBinary() *schema.Process {
	created := r.at(12) + 2
	return &schema.Process{
		Name: "integration.test", PID: schema.Ptr(4311), CPID: cpid(created, 4311), CreatedTime: created,
		CmdLine: "./integration.test -test.run TestAttach", File: exe("/builds/acme/api/integration.test"),
		Sandbox: r.policy, WorkingDirectory: r.workDir,
		User:          &schema.User{Name: "nobody", UID: "65534", TypeID: schema.UserTypeIDService},
		EUID:          schema.Ptr(65534),
		EGID:          schema.Ptr(65534),
		ParentProcess: r.make(),
	}
}

func (r *run) fuzzer() *schema.Process {
	p := r.dropped("parser.fuzz", "/srv/fuzz/parser.fuzz", "./parser.fuzz -max_total_time=3600 corpus/")
	return p
}

func (r *run) kernelEvent(seq int, sev schema.SeverityID, code, syscall string, actor *schema.Process) *schema.KernelActivity {
	ev := schema.NewKernelActivity(schema.KernelActivityActivityIDInvoke)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: code})
	ev.Actor = &schema.Actor{Process: actor}
	ev.Device = r.device()
	ev.Kernel = &schema.Kernel{Name: syscall, SystemCall: syscall, TypeID: schema.KernelTypeIDSystemCall}
	ev.Policy = r.policyObj()
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDFailure
	return ev
}

func kaPtraceDenied() schema.Event {
	r := runA
	p := r.testBinary()
	p.Xattributes = map[string]any{"seccomp_action": "SECCOMP_RET_ERRNO", "syscall_nr": 101, "arch": "AUDIT_ARCH_X86_64"}
	ev := r.kernelEvent(13, schema.SeverityIDMedium, "SECCOMP_DENIED", "ptrace", p)
	ev.StatusCode = "EPERM"
	ev.StatusDetail = "ptrace(PTRACE_ATTACH, 4312) denied by seccomp profile build-default"
	ev.Message = "seccomp denied ptrace to integration.test (pid 4311)"
	return ev
}

func kaBPFKilled() schema.Event {
	r := runD
	p := r.fuzzer()
	p.Xattributes = map[string]any{"seccomp_action": "SECCOMP_RET_KILL_PROCESS", "syscall_nr": 321, "arch": "AUDIT_ARCH_X86_64"}
	ev := r.kernelEvent(16, schema.SeverityIDMedium, "SECCOMP_KILLED", "bpf", p)
	ev.StatusCode = "SIGSYS"
	ev.StatusDetail = "bpf(BPF_PROG_LOAD) denied by seccomp profile fuzz: process killed"
	ev.Message = "seccomp killed parser.fuzz (pid 7716) on bpf"
	return ev
}

func kaUnshareDenied() schema.Event {
	r := runD
	p := r.fuzzer()
	p.Xattributes = map[string]any{"seccomp_action": "SECCOMP_RET_ERRNO", "syscall_nr": 272, "arch": "AUDIT_ARCH_X86_64"}
	ev := r.kernelEvent(15, schema.SeverityIDLow, "SECCOMP_DENIED", "unshare", p)
	ev.StatusCode = "EPERM"
	ev.StatusDetail = "unshare(CLONE_NEWUSER) denied by seccomp profile fuzz"
	ev.Message = "seccomp denied unshare to parser.fuzz (pid 7716)"
	return ev
}

func landlockXattrs(access string) map[string]any {
	return map[string]any{"landlock_abi": 4, "landlock_denied_access": access}
}

func (r *run) fileEvent(activity schema.FileActivityActivityID, seq int, sev schema.SeverityID, actor *schema.Process, f *schema.File) *schema.FileActivity {
	ev := schema.NewFileActivity(activity)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: "LANDLOCK_FS_DENIED"})
	ev.Actor = &schema.Actor{Process: actor}
	ev.Device = r.device()
	ev.File = f
	ev.Policy = r.policyObj()
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDFailure
	ev.StatusCode = "EACCES"
	ev.Observables = []schema.Observable{
		{Name: "file.path", TypeID: schema.ObservableTypeIDFilePath, Value: f.Path},
		{Name: "actor.process.pid", TypeID: schema.ObservableTypeIDProcessID, Value: fmt.Sprint(*actor.PID)},
	}
	return ev
}

func faWriteEtcDenied() schema.Event {
	r := runA
	p := r.make()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_FS_WRITE_FILE")
	ev := r.fileEvent(schema.FileActivityActivityIDUpdate, 15, schema.SeverityIDLow, p,
		&schema.File{Name: "hosts", Path: "/etc/hosts", ParentFolder: "/etc", TypeID: schema.FileTypeIDRegularFile})
	ev.StatusDetail = "open(\"/etc/hosts\", O_WRONLY|O_APPEND): Landlock denied write_file"
	ev.Message = "landlock denied make (pid 4127) writing /etc/hosts"
	return ev
}

func faReadSSHKeyDenied() schema.Event {
	r := runA
	p := r.testBinary()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_FS_READ_FILE")
	ev := r.fileEvent(schema.FileActivityActivityIDRead, 16, schema.SeverityIDMedium, p,
		&schema.File{Name: "id_ed25519", Path: "/home/gitlab-runner/.ssh/id_ed25519", ParentFolder: "/home/gitlab-runner/.ssh", TypeID: schema.FileTypeIDRegularFile})
	ev.StatusDetail = "openat(AT_FDCWD, \"/home/gitlab-runner/.ssh/id_ed25519\", O_RDONLY): Landlock denied read_file"
	ev.Message = "landlock denied integration.test (pid 4311) reading /home/gitlab-runner/.ssh/id_ed25519"
	return ev
}

func faCreateDenied() schema.Event {
	r := runD
	p := r.fuzzer()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_FS_MAKE_REG")
	ev := r.fileEvent(schema.FileActivityActivityIDCreate, 12, schema.SeverityIDLow, p,
		&schema.File{Name: "crash-5f1e0a.bin", Path: "/var/tmp/crash-5f1e0a.bin", ParentFolder: "/var/tmp", TypeID: schema.FileTypeIDRegularFile})
	ev.StatusDetail = "openat(AT_FDCWD, \"/var/tmp/crash-5f1e0a.bin\", O_WRONLY|O_CREAT|O_EXCL, 0644): Landlock denied make_reg"
	ev.Message = "landlock denied parser.fuzz (pid 7716) creating /var/tmp/crash-5f1e0a.bin"
	return ev
}

func (r *run) networkEvent(seq int, sev schema.SeverityID, actor *schema.Process, dir schema.DirectionID, ver schema.ProtocolVerID) *schema.NetworkActivity {
	ev := schema.NewNetworkActivity(schema.NetworkActivityActivityIDRefuse)
	stamp(ev, envelope{run: r, seq: seq, sev: sev, code: "LANDLOCK_NET_DENIED"})
	ev.Actor = &schema.Actor{Process: actor}
	ev.Device = r.device()
	ev.Policy = r.policyObj()
	ev.ActionID = schema.ActionIDDenied
	ev.DispositionID = schema.DispositionIDBlocked
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDFailure
	ev.StatusCode = "EACCES"
	ev.ConnectionInfo = &schema.NetworkConnectionInfo{
		DirectionID: dir, ProtocolName: "tcp", ProtocolNum: schema.Ptr(6), ProtocolVerID: ver, BoundaryID: schema.BoundaryIDExternal,
	}
	return ev
}

func naConnectRefused() schema.Event {
	r := runA
	p := r.testBinary()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_NET_CONNECT_TCP")
	ev := r.networkEvent(17, schema.SeverityIDMedium, p, schema.DirectionIDOutbound, schema.ProtocolVerIDInternetProtocolVersion4IPv4)
	ev.DstEndpoint = &schema.NetworkEndpoint{IP: "203.0.113.7", Port: schema.Ptr(443), Hostname: "uploads.example.org"}
	ev.StatusDetail = "connect(203.0.113.7:443): Landlock denied connect_tcp"
	ev.Message = "landlock denied integration.test (pid 4311) connecting to 203.0.113.7:443"
	ev.Observables = []schema.Observable{
		{Name: "dst_endpoint.ip", TypeID: schema.ObservableTypeIDIPAddress, Value: "203.0.113.7"},
		{Name: "dst_endpoint.port", TypeID: schema.ObservableTypeIDPort, Value: "443"},
	}
	return ev
}

func naBindRefused() schema.Event {
	r := runD
	p := r.fuzzer()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_NET_BIND_TCP")
	ev := r.networkEvent(13, schema.SeverityIDLow, p, schema.DirectionIDInbound, schema.ProtocolVerIDInternetProtocolVersion4IPv4)
	ev.ConnectionInfo.BoundaryID = schema.BoundaryIDLocalhost
	ev.SrcEndpoint = &schema.NetworkEndpoint{IP: "127.0.0.1", Port: schema.Ptr(8080)}
	ev.StatusDetail = "bind(127.0.0.1:8080): Landlock denied bind_tcp"
	ev.Message = "landlock denied parser.fuzz (pid 7716) binding 127.0.0.1:8080"
	return ev
}

func naConnect6Refused() schema.Event {
	r := runD
	p := r.fuzzer()
	p.Xattributes = landlockXattrs("LANDLOCK_ACCESS_NET_CONNECT_TCP")
	ev := r.networkEvent(14, schema.SeverityIDLow, p, schema.DirectionIDOutbound, schema.ProtocolVerIDInternetProtocolVersion6IPv6)
	ev.DstEndpoint = &schema.NetworkEndpoint{IP: "2001:db8:4::53", Port: schema.Ptr(53)}
	ev.StatusDetail = "connect([2001:db8:4::53]:53): Landlock denied connect_tcp"
	ev.Message = "landlock denied parser.fuzz (pid 7716) connecting to [2001:db8:4::53]:53"
	return ev
}

// Application Lifecycle: the long-running daemons.

func daemon(pid int, started int64, cmdLine string) *schema.Process {
	return &schema.Process{
		Name: "sandtrail", PID: schema.Ptr(pid), CPID: cpid(started, pid), CreatedTime: started,
		CmdLine: cmdLine, File: exe("/usr/local/bin/sandtrail"),
		User: &schema.User{Name: "sandtrail", UID: "998", TypeID: schema.UserTypeIDService},
		EUID: schema.Ptr(998), EGID: schema.Ptr(998),
		ParentProcess: &schema.Process{Name: "systemd", PID: schema.Ptr(1), File: exe("/usr/lib/systemd/systemd")},
	}
}

func lifecycle(activity schema.ApplicationLifecycleActivityID, at int64, tag uint16, host, machineID, app string, p *schema.Process, code string) *schema.ApplicationLifecycle {
	ev := schema.NewApplicationLifecycle(activity)
	stamp(ev, envelope{at: at, uid: uuidV7(at, tag, 1), host: host, sev: schema.SeverityIDInformational, code: code})
	ev.App = &schema.Product{Name: app, VendorName: "sandtrail", Version: productVersion, Path: "/usr/local/bin/sandtrail"}
	ev.Actor = &schema.Actor{Process: p}
	ev.Device = device(host, machineID)
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDSuccess
	return ev
}

const (
	serverStarted    int64 = 1764169995000
	collectorStarted int64 = 1764170001000
)

func serverProcess() *schema.Process {
	return daemon(1203, serverStarted, "/usr/local/bin/sandtrail server --config /etc/sandtrail/server.toml")
}

func collectorProcess() *schema.Process {
	return daemon(911, collectorStarted, "/usr/local/bin/sandtrail collector --config /etc/sandtrail/collector.toml")
}

func alServerStart() schema.Event {
	ev := lifecycle(schema.ApplicationLifecycleActivityIDStart, serverStarted+840, 0x51, buildHost, buildMachineID, "sandtrail server", serverProcess(), "SERVER_STARTED")
	ev.Message = "sandtrail server started: spool /var/lib/sandtrail/spool, publishing to nats://nats.internal.example.net:4222"
	return ev
}

func alServerStop() schema.Event {
	const at = 1764291600000
	ev := lifecycle(schema.ApplicationLifecycleActivityIDStop, at, 0x52, buildHost, buildMachineID, "sandtrail server", serverProcess(), "SERVER_STOPPED")
	ev.Duration = schema.Ptr(at - serverStarted)
	ev.StatusDetail = "SIGTERM: drained, spool empty"
	ev.Message = "sandtrail server stopped on SIGTERM after publishing every spooled event"
	return ev
}

func alCollectorStart() schema.Event {
	ev := lifecycle(schema.ApplicationLifecycleActivityIDStart, collectorStarted+610, 0xc1, collectorHost, collectorMID, "sandtrail collector", collectorProcess(), "COLLECTOR_STARTED")
	ev.Message = "sandtrail collector started: consumer sandtrail-collector on stream SANDTRAIL_EVENTS, sinks elastic, splunk"
	return ev
}

func alCollectorStopFailed() schema.Event {
	const at = 1764291605000
	ev := lifecycle(schema.ApplicationLifecycleActivityIDStop, at, 0xc2, collectorHost, collectorMID, "sandtrail collector", collectorProcess(), "COLLECTOR_STOPPED")
	stamp(ev, envelope{at: at, uid: uuidV7(at, 0xc2, 1), host: collectorHost, sev: schema.SeverityIDMedium, code: "COLLECTOR_STOPPED"})
	ev.Duration = schema.Ptr(at - collectorStarted)
	ev.StatusID = schema.DeviceConfigStateChangeStatusIDFailure
	ev.StatusCode = "DRAIN_TIMEOUT"
	ev.StatusDetail = "sink elastic: context deadline exceeded after 30s; 12 events stay unacknowledged in the stream"
	ev.Message = "sandtrail collector stopped before draining: 12 events will be redelivered"
	return ev
}

// Application Error: the collector's dead letters. raw_data is the rejected
// message, message the validator's error for it.

func deadLetter(at int64, seq int, raw []byte, reason string) *schema.ApplicationError {
	ev := schema.NewApplicationError(schema.ApplicationErrorActivityIDTranslationError)
	stamp(ev, envelope{at: at, uid: uuidV7(at, 0xdd, seq), host: collectorHost, sev: schema.SeverityIDMedium,
		code: "DLQ_" + strings.ToUpper(reason), logName: "sandtrail.dlq." + reason})
	ev.Actor = &schema.Actor{Process: collectorProcess()}
	ev.Device = device(collectorHost, collectorMID)
	ev.RawData = string(raw)
	ev.RawDataSize = schema.Ptr(int64(len(raw)))
	ev.RawDataHash = &schema.Fingerprint{AlgorithmID: schema.FingerprintAlgorithmIDSHA256, Value: sha256Hex(string(raw))}
	err := schema.Validate(raw)
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		panic(fmt.Sprintf("dead letter %s: the raw event must be rejected, got %v", reason, err))
	}
	ev.Message = ve.Error()
	ev.StatusCode = strings.ToUpper(ve.Kind.String())
	ev.StatusDetail = fmt.Sprintf("path %s, byte %d", ve.Path, ve.Offset)
	return ev
}

func aeSchemaViolation() schema.Event {
	// A compliance finding from an older emitter that wrote status_id 4.
	raw := []byte(`{"class_uid":2003,"category_uid":2,"activity_id":1,"type_uid":200301,"severity_id":1,"time":1764262000000,` +
		`"metadata":{"version":"1.8.0","product":{"name":"sandtrail","vendor_name":"sandtrail","version":"0.8.0"},"uid":"019ac5d0-0d80-7001-8a1b-3c9e5b1d7f43"},` +
		`"compliance":{"control":"seccomp","status_id":4},"finding_info":{"uid":"019ac5d0-0d80-7000-8a1b-3c9e5b1d7f42/seccomp"}}`)
	return deadLetter(1764262000412, 1, raw, "schema")
}

func aeTruncated() schema.Event {
	// Cut by a relay with a 256-byte frame limit.
	full := `{"class_uid":1007,"category_uid":1,"activity_id":2,"type_uid":100702,"severity_id":1,"time":1764262100000,"timezone_offset":0,` +
		`"metadata":{"version":"1.8.0","product":{"name":"sandtrail","vendor_name":"sandtrail","version":"0.9.2"},"uid":"019ac5d1-9420-7011-8a1b-3c9e5b1d7f52"},` +
		`"actor":{"process":{"name":"sandtrail","pid":4120}},"device":{"type_id":1,"hostname":"build-07.ci.example.net"},"process":{"name":"make","pid":4127},"exit_code":0}`
	return deadLetter(1764262100390, 2, []byte(full[:256]), "syntax")
}

func aeUnknownClass() schema.Event {
	// An Authentication event a misconfigured producer published on sandtrail.events.
	raw := []byte(`{"class_uid":3002,"category_uid":3,"activity_id":1,"type_uid":300201,"severity_id":1,"time":1764262200000,` +
		`"metadata":{"version":"1.8.0","product":{"name":"sshd-exporter","vendor_name":"example"}},"user":{"name":"deploy"},"auth_protocol_id":99,"status_id":1}`)
	return deadLetter(1764262200205, 3, raw, "unknown_class")
}

// Golden files.

func goldenPath(f fixture) string {
	c, ok := schema.Class(f.event.ClassUID())
	if !ok {
		panic(fmt.Sprintf("fixture %s: class %d is not generated", f.name, f.event.ClassUID()))
	}
	return filepath.Join(corpusDir, "valid", c.Name, f.name+".json")
}

// TestCorpusGolden marshals every fixture with encoding/json, validates it,
// and compares it with its golden file as parsed JSON.
func TestCorpusGolden(t *testing.T) {
	fx := fixtures()
	want := map[string]bool{}
	perClass := map[string]int{}
	for _, f := range fx {
		path := goldenPath(f)
		if want[path] {
			t.Fatalf("two fixtures write %s", path)
		}
		want[path] = true
		perClass[filepath.Base(filepath.Dir(path))]++
	}
	for _, c := range schema.Classes() {
		if n := perClass[c.Name]; n < 3 {
			t.Errorf("class %s has %d fixtures, want at least 3", c.Name, n)
		}
	}

	for _, f := range fx {
		path := goldenPath(f)
		t.Run(filepath.Base(filepath.Dir(path))+"/"+f.name, func(t *testing.T) {
			got, err := json.Marshal(f.event)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			if err := schema.Validate(got); err != nil {
				t.Fatalf("Validate(marshalled fixture) = %v, want nil\n%s", err, got)
			}
			if *update {
				var out bytes.Buffer
				if err := json.Indent(&out, got, "", "  "); err != nil {
					t.Fatal(err)
				}
				out.WriteByte('\n')
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(parseJSON(t, golden), parseJSON(t, got)); diff != "" {
				t.Errorf("%s differs from the fixture (-golden +marshalled); run with -update if the change is deliberate:\n%s", path, diff)
			}
		})
	}

	// Every golden file comes from a fixture.
	err := filepath.WalkDir(filepath.Join(corpusDir, "valid"), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() || want[path]:
			return nil
		case *update:
			return os.Remove(path)
		}
		t.Errorf("%s is not produced by any fixture: add one or delete the file", path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func parseJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("parse JSON: %v", err)
	}
	return v
}

// TestOptionalEnumZeroIsEncoded: risk_level_id 0 is "Info" in OCSF 1.8.0,
// not "Unknown", so a Secure posture with risk level Info must encode it.
// Optional enums whose 0 member is meaningful (also dns_query.opcode_id 0
// Query, tls_extension.type_id 0 server_name) are generated as pointers.
func TestOptionalEnumZeroIsEncoded(t *testing.T) {
	ev := dcscPostureSecure()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RiskLevelID *int    `json:"risk_level_id"`
		RiskLevel   *string `json:"risk_level"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.RiskLevelID == nil || *got.RiskLevelID != 0 || got.RiskLevel == nil || *got.RiskLevel != "Info" {
		t.Errorf("posture with RiskLevelID = RiskLevelIDInfo encodes risk_level_id=%v risk_level=%v, want 0 and \"Info\"",
			deref(got.RiskLevelID), deref(got.RiskLevel))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "absent"
	}
	return *p
}
