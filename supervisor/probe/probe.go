// Package probe tells what this host lets the supervisor confine, before
// anything is forked, and changes nothing while doing so.
//
// [Probe] asks the kernel directly, with calls chosen so that they cannot
// succeed in changing anything (a bounding-set drop of a capability that
// does not exist, a seccomp filter install with a NULL program, a Landlock
// version query) or that act only in throwaway children (namespace
// creation). Each answer becomes a [Facility] carrying the raw evidence:
// the exact call or file and what it returned, so that an event can say
// not only what the host can do but how that was established.
//
// Guarantees: Probe starts no goroutine, keeps no global state, leaves the
// calling process's credentials, capability sets, no_new_privs, seccomp
// filters, namespaces and Landlock domain as they were, and reaps every
// child it starts before returning.
package probe

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Status says how much of a facility the host offers.
type Status string

const (
	// Available: the facility works as the supervisor would use it.
	Available Status = "available"
	// Partial: it works with limits the Detail names (missing actions or
	// flags, a namespace creatable only inside a new user namespace).
	Partial Status = "partial"
	// Unavailable: the kernel refused it; Errno says how.
	Unavailable Status = "unavailable"
	// Unknown: the probe could not tell (a file it needs is missing, an
	// errno it cannot interpret); the Detail says why.
	Unknown Status = "unknown"
)

// Facility names, in the order a Report lists them.
const (
	FacilityBoundingSet    = "capability_bounding_set"
	FacilityNoNewPrivs     = "no_new_privs"
	FacilityLandlock       = "landlock"
	FacilitySeccomp        = "seccomp"
	FacilityUserNamespaces = "user_namespaces"
	FacilityPIDNamespace   = "namespaces.pid"
	FacilityMountNamespace = "namespaces.mount"
	FacilityIPCNamespace   = "namespaces.ipc"
	FacilityUTSNamespace   = "namespaces.uts"
	FacilityNetNamespace   = "namespaces.net"
	FacilityCgroupNS       = "namespaces.cgroup"
	FacilityCgroups        = "cgroups"
)

// Facility is what the host offers of one confinement mechanism.
type Facility struct {
	// Name is one of the Facility* constants.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is a sentence a person reads: what works, what does not and
	// the likely reason.
	Detail string `json:"detail"`
	// Errno is the name of the errno that decided an Unavailable or
	// Partial status ("EPERM", "ENOSYS"...), or empty.
	Errno string `json:"errno,omitempty"`
	// Evidence maps each call made or file read, spelled as in C
	// ("prctl(PR_CAPBSET_DROP, 41)", "/proc/sys/kernel/cap_last_cap"), to
	// what it returned: an errno name on failure, else the return value or
	// the file's content ("ok" when a child was created and reaped).
	Evidence map[string]string `json:"evidence,omitempty"`
}

// BoundingSetDrop is the verdict on prctl(PR_CAPBSET_DROP).
type BoundingSetDrop string

const (
	// DropPermitted: EINVAL for a capability that does not exist, so the
	// CAP_SETPCAP and LSM checks, which come first, passed.
	DropPermitted BoundingSetDrop = "permitted"
	// DropNoSetpcap: EPERM and CAP_SETPCAP is not in the effective set.
	DropNoSetpcap BoundingSetDrop = "denied_cap_setpcap_missing"
	// DropDeniedDespiteCap: EPERM although CAP_SETPCAP is effective: an
	// LSM (the AppArmor case) or a seccomp filter forbids it.
	DropDeniedDespiteCap BoundingSetDrop = "denied_despite_cap_setpcap"
	// DropUnknown: the probe could not run or got another answer.
	DropUnknown BoundingSetDrop = "unknown"
)

// Kernel identifies the running kernel, from uname(2).
type Kernel struct {
	Release string `json:"release"`
	Version string `json:"version"`
	Machine string `json:"machine"`
}

// Creds are the credentials and capability sets of the probing thread, as
// /proc reports them.
type Creds struct {
	UID    int   `json:"uid"`
	EUID   int   `json:"euid"`
	SUID   int   `json:"suid"`
	FSUID  int   `json:"fsuid"`
	GID    int   `json:"gid"`
	EGID   int   `json:"egid"`
	SGID   int   `json:"sgid"`
	FSGID  int   `json:"fsgid"`
	Groups []int `json:"groups"`

	CapInh CapSet `json:"cap_inh"`
	CapPrm CapSet `json:"cap_prm"`
	CapEff CapSet `json:"cap_eff"`
	CapBnd CapSet `json:"cap_bnd"`
	// CapAmb is empty on kernels without ambient capabilities (< 4.3).
	CapAmb CapSet `json:"cap_amb"`

	NoNewPrivs bool `json:"no_new_privs"`
	// SeccompMode is 0 (disabled), 1 (strict) or 2 (filter); -1 when the
	// kernel does not report it.
	SeccompMode int `json:"seccomp_mode"`
	// SeccompFilters is the number of filters in force; -1 when the
	// kernel does not report it (< 5.9).
	SeccompFilters int `json:"seccomp_filters"`
}

// UserNamespaces describes where the process stands with user namespaces.
type UserNamespaces struct {
	// Max is /proc/sys/user/max_user_namespaces; -1 if unreadable.
	Max int `json:"max"`
	// Initial is true when /proc/self/uid_map is the identity map of the
	// initial user namespace ("0 0 4294967295").
	Initial bool `json:"initial"`
	// UIDMap is /proc/self/uid_map, with runs of spaces collapsed.
	UIDMap string `json:"uid_map"`
}

// Cgroup describes the cgroup hierarchies mounted on the host.
type Cgroup struct {
	// Version is "2" (unified), "1" (legacy), "hybrid" (both mounted) or
	// "none".
	Version string `json:"version"`
	// V2Mount is where cgroup2 is mounted, or empty.
	V2Mount string `json:"v2_mount,omitempty"`
	// V2Controllers are the controllers enabled at the v2 root.
	V2Controllers []string `json:"v2_controllers,omitempty"`
	// V1Controllers are the controllers (and names) of v1 hierarchies.
	V1Controllers []string `json:"v1_controllers,omitempty"`
}

// Report is what [Probe] found. It is a plain value, safe to encode as
// JSON and to share read-only.
type Report struct {
	Kernel    Kernel `json:"kernel"`
	Hostname  string `json:"hostname"`
	MachineID string `json:"machine_id,omitempty"`
	// CapLastCap is /proc/sys/kernel/cap_last_cap; -1 if unreadable.
	CapLastCap int   `json:"cap_last_cap"`
	Creds      Creds `json:"creds"`

	BoundingSetDrop BoundingSetDrop `json:"bounding_set_drop"`
	// LandlockABI is the Landlock ABI version, 0 when unavailable.
	LandlockABI int `json:"landlock_abi"`
	// LandlockErrata is the bitmask of fixed Landlock errata, nil when the
	// kernel cannot tell (no LANDLOCK_CREATE_RULESET_ERRATA).
	LandlockErrata *uint64 `json:"landlock_errata,omitempty"`
	// SeccompActions are the filter return actions the kernel supports
	// ("kill_process", "errno", "user_notif"...).
	SeccompActions []string `json:"seccomp_actions"`
	// SeccompFilterFlags are the SECCOMP_FILTER_FLAG_* the kernel accepts
	// ("tsync", "log"...).
	SeccompFilterFlags []string       `json:"seccomp_filter_flags"`
	UserNamespaces     UserNamespaces `json:"user_namespaces"`
	Cgroup             Cgroup         `json:"cgroup"`

	// Facilities lists every facility, in the order of the Facility*
	// constants.
	Facilities []Facility `json:"facilities"`
}

// Facility returns the facility called name.
func (r *Report) Facility(name string) (Facility, bool) {
	for _, f := range r.Facilities {
		if f.Name == name {
			return f, true
		}
	}
	return Facility{}, false
}

// Table writes an aligned table of the facilities (facility, status,
// detail), after one line naming the host, kernel and credentials: what a
// person reads to know what this host can confine.
func (r *Report) Table(w io.Writer) error {
	groups := make([]string, len(r.Creds.Groups))
	for i, g := range r.Creds.Groups {
		groups[i] = strconv.Itoa(g)
	}
	if _, err := fmt.Fprintf(w, "host %s, Linux %s %s, uid %d euid %d gid %d egid %d groups [%s], CapEff %s\n",
		r.Hostname, r.Kernel.Release, r.Kernel.Machine, r.Creds.UID, r.Creds.EUID, r.Creds.GID, r.Creds.EGID,
		strings.Join(groups, " "), r.Creds.CapEff); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FACILITY\tSTATUS\tDETAIL")
	for _, f := range r.Facilities {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, f.Status, f.Detail)
	}
	return tw.Flush()
}
