package confine

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// ResolveIDs turns the privilege-drop policy into numbers for
// DropPrivileges. euid is the supervisor's effective uid.
//
// A decimal user or group is taken as is, so that a policy does not depend
// on /etc/passwd; a name is looked up with os/user. When euid is not 0 and
// p.WhenUnprivileged is keep, ResolveIDs returns the current uid, gid and
// supplementary groups and switchIDs false: there is nothing to drop, and
// DropPrivileges, given those, changes nothing and reports it applied.
// Otherwise switchIDs is true. Resolving to uid or gid 0 is an error: the
// policy forbids root, whatever a name aliases.
func ResolveIDs(p policy.PrivilegeDrop, euid int) (uid, gid int, groups []int, switchIDs bool, err error) {
	if euid != 0 && p.WhenUnprivileged != policy.UnprivilegedSwitch {
		groups, err := os.Getgroups()
		if err != nil {
			return 0, 0, nil, false, fmt.Errorf("confine: current groups: %w", err)
		}
		return euid, os.Getegid(), groups, false, nil
	}
	if uid, err = resolveID(p.User, "user"); err != nil {
		return 0, 0, nil, false, err
	}
	if gid, err = resolveID(p.Group, "group"); err != nil {
		return 0, 0, nil, false, err
	}
	groups = []int{}
	for _, g := range p.SupplementaryGroups {
		id, err := resolveID(g, "group")
		if err != nil {
			return 0, 0, nil, false, err
		}
		groups = append(groups, id)
	}
	return uid, gid, groups, true, nil
}

// resolveID resolves a decimal id or a user or group name.
func resolveID(s, kind string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("confine: empty %s", kind)
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		var idStr string
		switch kind {
		case "user":
			u, lerr := user.Lookup(s)
			if lerr != nil {
				return 0, fmt.Errorf("confine: resolve user %q: %w", s, lerr)
			}
			idStr = u.Uid
		default:
			g, lerr := user.LookupGroup(s)
			if lerr != nil {
				return 0, fmt.Errorf("confine: resolve group %q: %w", s, lerr)
			}
			idStr = g.Gid
		}
		if id, err = strconv.ParseUint(idStr, 10, 32); err != nil {
			return 0, fmt.Errorf("confine: resolve %s %q: id %q: %w", kind, s, idStr, err)
		}
	}
	switch {
	case id == 0:
		return 0, fmt.Errorf("confine: %s %q is root (id 0): a sandbox never runs as root", kind, s)
	case id > 1<<32-2:
		return 0, fmt.Errorf("confine: %s %q: id %d is out of range", kind, s, id)
	}
	return int(id), nil
}
