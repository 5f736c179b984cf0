package probe_test

import (
	"context"
	"fmt"
	"os"

	"github.com/sandtrail/sandtrail/supervisor/probe"
)

// Probe the host, print the table a person reads, then decide on one
// facility.
func ExampleProbe() {
	r, err := probe.Probe(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	if err := r.Table(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	if f, ok := r.Facility(probe.FacilityBoundingSet); ok && f.Status != probe.Available {
		fmt.Printf("the workload keeps its bounding set: %s (%s)\n", f.Detail, f.Errno)
	}
}

// Report.Table on a host where an LSM denies bounding-set drops.
func ExampleReport_Table() {
	r := &probe.Report{
		Kernel:   probe.Kernel{Release: "6.18.44", Machine: "x86_64"},
		Hostname: "build-7",
		Creds:    probe.Creds{CapEff: 0x1fffeffffff},
		Facilities: []probe.Facility{
			{Name: probe.FacilityBoundingSet, Status: probe.Unavailable, Errno: "EPERM",
				Detail: "bounding-set drops denied (EPERM) although CAP_SETPCAP is in the effective set"},
			{Name: probe.FacilityLandlock, Status: probe.Available, Detail: "ABI 7"},
		},
	}
	r.Table(os.Stdout)
	// Output:
	// host build-7, Linux 6.18.44 x86_64, uid 0 euid 0 gid 0 egid 0 groups [], CapEff 000001fffeffffff
	// FACILITY                 STATUS       DETAIL
	// capability_bounding_set  unavailable  bounding-set drops denied (EPERM) although CAP_SETPCAP is in the effective set
	// landlock                 available    ABI 7
}
