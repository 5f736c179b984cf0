package probe_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sandtrail/sandtrail/supervisor/probe"
)

var update = flag.Bool("update", false, "rewrite testdata/table.golden and testdata/report.golden.json")

// fixedReport is a report of a degraded host: the AppArmor case for the
// bounding set, Landlock disabled at boot, user namespaces forbidden.
func fixedReport() *probe.Report {
	errata := uint64(7)
	return &probe.Report{
		Kernel:     probe.Kernel{Release: "6.18.44", Version: "#1 SMP", Machine: "x86_64"},
		Hostname:   "build-7",
		MachineID:  "3d1219c7c4c5404aaa1f6d2a48adfda4",
		CapLastCap: 40,
		Creds: probe.Creds{
			Groups: []int{0, 100},
			CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1fffeffffff,
			SeccompMode: 2, SeccompFilters: 1,
		},
		BoundingSetDrop:    probe.DropDeniedDespiteCap,
		LandlockErrata:     &errata,
		SeccompActions:     []string{"kill_process", "errno", "allow"},
		SeccompFilterFlags: []string{"tsync", "log"},
		UserNamespaces:     probe.UserNamespaces{Max: 0, Initial: true, UIDMap: "0 0 4294967295"},
		Cgroup:             probe.Cgroup{Version: "2", V2Mount: "/sys/fs/cgroup", V2Controllers: []string{"memory", "pids"}},
		Facilities: []probe.Facility{
			{Name: probe.FacilityBoundingSet, Status: probe.Unavailable, Errno: "EPERM",
				Detail:   "bounding-set drops denied (EPERM) although CAP_SETPCAP is in the effective set",
				Evidence: map[string]string{"prctl(PR_CAPBSET_DROP, 41)": "EPERM"}},
			{Name: probe.FacilityLandlock, Status: probe.Unavailable, Errno: "EOPNOTSUPP", Detail: "compiled in but disabled at boot"},
			{Name: probe.FacilitySeccomp, Status: probe.Partial, Detail: "filter mode; missing action user_notif"},
			{Name: probe.FacilityUserNamespaces, Status: probe.Unavailable, Errno: "ENOSPC", Detail: "limit reached"},
			{Name: probe.FacilityCgroups, Status: probe.Available, Detail: "cgroup v2"},
		},
	}
}

func golden(t *testing.T, path string, got []byte) []byte {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	return want
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := fixedReport().Table(&b); err != nil {
		t.Fatal(err)
	}
	want := golden(t, "testdata/table.golden", b.Bytes())
	if diff := cmp.Diff(b.String(), string(want)); diff != "" {
		t.Errorf("Table (-got +want):\n%s", diff)
	}
}

// TestReportJSON checks the JSON form against a golden file, compared as
// parsed JSON, and that it decodes back to the same Report (the CLI's
// --json and the probing children of these tests rely on it).
func TestReportJSON(t *testing.T) {
	r := fixedReport()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "testdata/report.golden.json", append(b, '\n'))
	var gotV, wantV any
	if err := json.Unmarshal(b, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gotV, wantV); diff != "" {
		t.Errorf("JSON (-got +want):\n%s", diff)
	}
	var back probe.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&back, r); diff != "" {
		t.Errorf("decoded report (-got +want):\n%s", diff)
	}
}

func TestCapSet(t *testing.T) {
	s := probe.CapSet(1<<probe.CapSetpcap | 1<<0 | 1<<40 | 1<<63)
	if got, want := s.String(), "8000010000000101"; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
	if diff := cmp.Diff(s.Names(), []string{"chown", "setpcap", "checkpoint_restore", "cap_63"}); diff != "" {
		t.Errorf("Names (-got +want):\n%s", diff)
	}
	if !s.Has(probe.CapSetpcap) || s.Has(1) || s.Has(64) || s.Has(-1) {
		t.Errorf("Has is wrong for %s", s)
	}
	var back probe.CapSet
	if err := back.UnmarshalText([]byte(s.String())); err != nil || back != s {
		t.Errorf("UnmarshalText(%s) = %s, %v", s, back, err)
	}
	for _, bad := range []string{"", "g", "12345678901234567"} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}
