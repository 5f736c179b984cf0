package probe

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fixtures in testdata/status: linux-6.18-*.txt were read from
// /proc/self/status on this project's machines (root; and cat run as uid
// 65534 with extra groups, no_new_privs and one seccomp filter);
// linux-3.10-user.txt is written by hand in the format of Linux 3.10,
// which prints no CapAmb, NoNewPrivs or Seccomp_filters line.
func TestParseStatusFixtures(t *testing.T) {
	tests := []struct {
		file string
		want Creds
	}{
		{"linux-6.18-root.txt", Creds{
			Groups: []int{},
			CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1fffeffffff,
		}},
		{"linux-6.18-nobody-nnp-filtered.txt", Creds{
			UID: 65534, EUID: 65534, SUID: 65534, FSUID: 65534,
			GID: 65534, EGID: 65534, SGID: 65534, FSGID: 65534, Groups: []int{100, 65534},
			CapBnd:     0x1fffeffffff,
			NoNewPrivs: true, SeccompMode: 2, SeccompFilters: 1,
		}},
		{"linux-3.10-user.txt", Creds{
			UID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000,
			GID: 1000, EGID: 1000, SGID: 1000, FSGID: 1000, Groups: []int{10, 1000},
			CapBnd:         0x1fffffffff,
			SeccompFilters: -1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open("testdata/status/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := parseStatus(f)
			if err != nil {
				t.Fatalf("parseStatus: %v", err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("parseStatus (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseStatusErrors(t *testing.T) {
	const good = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t1ff\n"
	tests := []struct {
		name, status, wantErr string
	}{
		{"no Uid", strings.Replace(good, "Uid:\t0\t0\t0\t0\n", "", 1), "no Uid line"},
		{"no CapBnd", strings.Replace(good, "CapBnd:\t1ff\n", "", 1), "no CapBnd line"},
		{"three uids", strings.Replace(good, "Uid:\t0\t0\t0\t0", "Uid:\t0\t0\t0", 1), "line 1: Uid"},
		{"negative gid", strings.Replace(good, "Gid:\t0\t0\t0\t0", "Gid:\t0\t-1\t0\t0", 1), "line 2: Gid"},
		{"cap set not hex", good + "CapAmb:\t00000000000000zz\n", "line 7: CapAmb"},
		{"cap set too long", good + "CapAmb:\t00000000000000000\n", "want 1 to 16 hexadecimal digits"},
		{"bad group", good + "Groups:\t1 x\n", "line 7: Groups"},
		{"seccomp mode 3", good + "Seccomp:\t3\n", "out of range 0..2"},
		{"no_new_privs 2", good + "NoNewPrivs:\t2\n", "line 7: NoNewPrivs"},
		{"empty", "", "no Uid line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStatus(strings.NewReader(tt.status))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseStatus error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestParseStatusTolerant checks lines without a colon, unknown fields,
// uneven spacing and missing optional fields are accepted.
func TestParseStatusTolerant(t *testing.T) {
	in := "garbage line\nUid:  5 6 7 8  \nFutureField:\tanything: at all\nGid:\t1\t2\t3\t4\nGroups:\t\n" +
		"CapInh:\t1\nCapPrm:\t2\nCapEff:\t4\nCapBnd:\tffffffffffffffff\n"
	got, err := parseStatus(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Creds{UID: 5, EUID: 6, SUID: 7, FSUID: 8, GID: 1, EGID: 2, SGID: 3, FSGID: 4, Groups: []int{},
		CapInh: 1, CapPrm: 2, CapEff: 4, CapBnd: ^CapSet(0), SeccompMode: -1, SeccompFilters: -1}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("parseStatus (-got +want):\n%s", diff)
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, file := range []string{"linux-6.18-root.txt", "linux-3.10-user.txt"} {
		b, err := os.ReadFile("testdata/status/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseStatus(strings.NewReader(s))
		if err != nil {
			return
		}
		if c.SeccompMode < -1 || c.SeccompMode > 2 || c.SeccompFilters < -1 {
			t.Errorf("accepted out-of-range seccomp state %d/%d", c.SeccompMode, c.SeccompFilters)
		}
	})
}
