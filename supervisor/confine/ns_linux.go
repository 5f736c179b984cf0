package confine

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// nsFiles maps the policy's namespace kinds, in policy order, to their
// files under /proc/<pid>/ns.
var nsFiles = []struct{ kind, file string }{
	{"user", "user"}, {"pid", "pid"}, {"mount", "mnt"}, {"ipc", "ipc"},
	{"uts", "uts"}, {"net", "net"}, {"cgroup", "cgroup"},
}

// NamespaceInodes returns the inode of each namespace of the calling thread
// (/proc/thread-self/ns/<file>), keyed by the policy's kind names (user,
// pid, mount, ipc, uts, net, cgroup): what the supervisor passes to its
// helper as VerifyNamespaces' parent. A kind the kernel lacks is left out.
func NamespaceInodes() map[string]uint64 {
	out := map[string]uint64{}
	for _, ns := range nsFiles {
		if ino, err := nsInode(ns.file); err == nil {
			out[ns.kind] = ino
		}
	}
	return out
}

func nsInode(file string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/"+file, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// VerifyNamespaces proves that the calling thread is in the new namespaces
// want asks for: one step per kind, in the policy's order. A kind that is
// on is Applied when the inode of /proc/thread-self/ns/<kind> differs from
// parent[kind] (the supervisor's, see NamespaceInodes), Failed when it is
// the same or cannot be compared; a kind that is off, or every kind when
// want.Mode is off, is Skipped. The namespaces themselves are created by
// the parent with clone flags.
func VerifyNamespaces(want policy.Namespaces, parent map[string]uint64) []Step {
	on := map[string]bool{}
	for _, k := range want.Kinds() {
		on[k] = true
	}
	steps := make([]Step, 0, len(nsFiles))
	for _, ns := range nsFiles {
		s := newStep(policy.ControlNamespaces, ns.kind, "new "+ns.kind+" namespace")
		ino, err := nsInode(ns.file)
		pino, havePino := parent[ns.kind]
		s.Evidence["path"] = "/proc/thread-self/ns/" + ns.file
		if err == nil {
			s.Evidence["inode"] = strconv.FormatUint(ino, 10)
			s.Effective = fmt.Sprintf("%s:[%d]", ns.file, ino)
		}
		if havePino {
			s.Evidence["parent_inode"] = strconv.FormatUint(pino, 10)
		}
		switch {
		case want.Mode == policy.Off || !on[ns.kind]:
			s.Requested = "off"
			s.Outcome, s.Detail = Skipped, "not requested: the "+ns.kind+" namespace is shared with the supervisor"
		case err != nil:
			s.fail(err, "cannot read the %s namespace: %v", ns.kind, err)
		case !havePino:
			s.fail(nil, "the supervisor's %s namespace inode was not given: nothing to compare with", ns.kind)
		case ino == pino:
			s.Effective += " (the supervisor's)"
			s.fail(nil, "still in the supervisor's %s namespace", ns.kind)
		default:
			s.Outcome = Applied
			s.Effective += fmt.Sprintf(" (supervisor %s:[%d])", ns.file, pino)
		}
		steps = append(steps, s)
	}
	return steps
}
