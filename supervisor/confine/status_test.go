package confine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatusFixtures(t *testing.T) {
	tests := []struct {
		file string
		want Status
	}{
		{"linux-6.18-root.txt", Status{
			Groups: []int{},
			CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1fffeffffff,
			Seccomp: 0, SeccompFilters: 0,
		}},
		{"linux-6.18-nobody-nnp.txt", Status{
			UID: 65534, EUID: 65534, SUID: 65534, FSUID: 65534,
			GID: 65534, EGID: 65534, SGID: 65534, FSGID: 65534,
			Groups: []int{}, CapBnd: 0x1fffeffffff, NoNewPrivs: true,
		}},
		{"linux-6.18-filtered-ambient.txt", Status{
			UID: 1000, EUID: 1001, SUID: 1002, FSUID: 1003,
			GID: 65534, EGID: 65534, SGID: 65534, FSGID: 65534,
			Groups: []int{4, 24, 27},
			CapInh: 0x400, CapPrm: 0x400, CapEff: 0x400, CapBnd: 0x1fffeffffff, CapAmb: 0x400,
			NoNewPrivs: true, Seccomp: 2, SeccompFilters: 3,
		}},
		// Linux 3.10: no CapAmb, NoNewPrivs or Seccomp_filters lines.
		{"linux-3.10-user.txt", Status{
			UID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000,
			GID: 1000, EGID: 1000, SGID: 1000, FSGID: 1000,
			Groups: []int{10, 1000}, CapBnd: 0x1fffffffff, Seccomp: 0, SeccompFilters: -1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "status", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseStatus(data)
			if err != nil {
				t.Fatalf("parseStatus: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseStatus (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStatusErrors(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "status", "linux-6.18-root.txt"))
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) string {
		if !strings.Contains(string(base), old) {
			t.Fatalf("fixture has no %q", old)
		}
		return strings.Replace(string(base), old, new, 1)
	}
	tests := []struct {
		name, data, want string
	}{
		{"no Uid", replace("Uid:\t0\t0\t0\t0\n", ""), "no Uid line"},
		{"no CapBnd", replace("CapBnd:\t000001fffeffffff\n", ""), "no CapBnd line"},
		{"no Groups", replace("Groups:\t \n", ""), "no Groups line"},
		{"three uids", replace("Uid:\t0\t0\t0\t0", "Uid:\t0\t0\t0"), "line 9: Uid"},
		{"negative gid", replace("Gid:\t0\t0\t0\t0", "Gid:\t0\t-1\t0\t0"), "line 10: Gid"},
		{"bad group", replace("Groups:\t ", "Groups:\t1 x"), "line 12: Groups"},
		{"long caps", replace("CapEff:\t000001fffeffffff", "CapEff:\t00000001fffeffffff"), "line 46: CapEff"},
		{"hex junk", replace("CapPrm:\t000001fffeffffff", "CapPrm:\t000001fffeffffzz"), "line 45: CapPrm"},
		{"empty caps", replace("CapInh:\t0000000000000000", "CapInh:\t"), "line 44: CapInh"},
		{"seccomp 3", replace("Seccomp:\t0", "Seccomp:\t3"), "line 50: Seccomp"},
		{"nnp 2", replace("NoNewPrivs:\t0", "NoNewPrivs:\t2"), "NoNewPrivs"},
		{"repeated", replace("CapAmb:\t0000000000000000\n", "CapAmb:\t0000000000000000\nCapEff:\t0000000000000000\n"), "CapEff: repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStatus([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseStatus: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseStatusIgnoresUnknownLines(t *testing.T) {
	data := "Uid:\t1\t1\t1\t1\nGid:\t2\t2\t2\t2\nGroups:\t\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\tff\n" +
		"no colon here\nFutureField:\tsomething new\nSeccomp:\t1\n"
	got, err := parseStatus([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := Status{UID: 1, EUID: 1, SUID: 1, FSUID: 1, GID: 2, EGID: 2, SGID: 2, FSGID: 2,
		Groups: []int{}, CapBnd: 0xff, Seccomp: 1, SeccompFilters: -1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseStatus (-want +got):\n%s", diff)
	}
	const wantString = "uid=1/1/1/1 gid=2/2/2/2 groups=[] CapInh=0000000000000000 CapPrm=0000000000000000 CapEff=0000000000000000 CapBnd=00000000000000ff CapAmb=0000000000000000 NoNewPrivs=0 Seccomp=1 Seccomp_filters=-1"
	if s := got.String(); s != wantString {
		t.Errorf("String:\ngot  %s\nwant %s", s, wantString)
	}
}
