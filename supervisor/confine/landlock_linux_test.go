package confine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// TestPlanLandlock checks go-landlock's compatibility rule for each ABI:
// what the ABI lacks is left out and named.
func TestPlanLandlock(t *testing.T) {
	p := policy.Default().Landlock
	const abi1 = 0x1fff
	tests := []struct {
		abi             int
		fs, net, scoped uint64
		dropped         []string
	}{
		{1, abi1, 0, 0, []string{"refer (ABI 2)", "truncate (ABI 3)", "ioctl_dev (ABI 5)", "bind_tcp (ABI 4)", "connect_tcp (ABI 4)", "scope_abstract_unix (ABI 6)", "scope_signal (ABI 6)"}},
		{2, abi1 | 0x2000, 0, 0, []string{"truncate (ABI 3)", "ioctl_dev (ABI 5)", "bind_tcp (ABI 4)", "connect_tcp (ABI 4)", "scope_abstract_unix (ABI 6)", "scope_signal (ABI 6)"}},
		{3, 0x7fff, 0, 0, []string{"ioctl_dev (ABI 5)", "bind_tcp (ABI 4)", "connect_tcp (ABI 4)", "scope_abstract_unix (ABI 6)", "scope_signal (ABI 6)"}},
		{4, 0x7fff, 3, 0, []string{"ioctl_dev (ABI 5)", "scope_abstract_unix (ABI 6)", "scope_signal (ABI 6)"}},
		{5, 0xffff, 3, 0, []string{"scope_abstract_unix (ABI 6)", "scope_signal (ABI 6)"}},
		{6, 0xffff, 3, 3, nil},
		{7, 0xffff, 3, 3, nil},
	}
	for _, tt := range tests {
		got := planLandlock(p, tt.abi)
		want := landlockPlan{abi: tt.abi, fs: tt.fs, net: tt.net, scoped: tt.scoped, dropped: tt.dropped}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(landlockPlan{})); diff != "" {
			t.Errorf("ABI %d (-want +got):\n%s", tt.abi, diff)
		}
	}
	p.Scope = policy.LandlockScope{Signal: true}
	if got := planLandlock(p, 5); !cmp.Equal(got.dropped, []string{"scope_signal (ABI 6)"}) || got.scoped != 0 {
		t.Errorf("ABI 5, signal scope only: %+v", got)
	}
	if got := planLandlock(p, 6); got.scoped != unix.LANDLOCK_SCOPE_SIGNAL {
		t.Errorf("ABI 6, signal scope only: scoped %#x", got.scoped)
	}
}

func TestPathRules(t *testing.T) {
	p := policy.Landlock{ReadOnly: []string{"/usr", "/etc"}, ReadWrite: []string{"/tmp/w"}, Execute: []string{"/usr"}}
	got := pathRules(p)
	want := map[string]uint64{"/usr": fsRead | fsExec, "/etc": fsRead, "/tmp/w": fsRead | fsWrite}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pathRules (-want +got):\n%s", diff)
	}
	if fsWrite&(unix.LANDLOCK_ACCESS_FS_MAKE_CHAR|unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK) != 0 {
		t.Error("read-write grants making device nodes")
	}
}

// TestPrepareLandlock builds rulesets on the real kernel without
// enforcing them (which would be irreversible).
func TestPrepareLandlock(t *testing.T) {
	if _, err := landlockABI(); err != nil {
		t.Skipf("Landlock is not available on this kernel (%v): the child tests cover that case", err)
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	file := filepath.Join(dir, "file")
	if err := writeFile(file); err != nil {
		t.Fatal(err)
	}
	base := func(mode policy.Mode) policy.Landlock {
		l := policy.Default().Landlock
		l.Mode = mode
		l.ReadWrite = append(l.ReadWrite, dir, file) // a file gets file rights only
		return l
	}
	t.Run("applied", func(t *testing.T) {
		r, s := PrepareLandlock(base(policy.Required))
		defer r.Close()
		if r == nil || s.Outcome != Applied || s.Errno != "" || s.Evidence["abi"] == "" {
			t.Fatalf("%s: want applied with a ruleset", s)
		}
		if !strings.Contains(s.Requested, "rw=[/dev/null "+dir+" "+file+"]") || !strings.HasPrefix(s.Requested, "ABI>=1 ro=[/bin") {
			t.Errorf("requested %q", s.Requested)
		}
		if !strings.Contains(s.Effective, "not yet enforced") {
			t.Errorf("effective %q: nothing is enforced before Restrict", s.Effective)
		}
	})
	t.Run("missing-required", func(t *testing.T) {
		l := base(policy.Required)
		l.ReadOnly = append(l.ReadOnly, missing)
		r, s := PrepareLandlock(l)
		if r != nil || s.Outcome != Failed || s.Errno != "ENOENT" || !strings.Contains(s.Detail, missing) {
			t.Errorf("%s: want failed with ENOENT naming %s, and no ruleset", s, missing)
		}
	})
	t.Run("missing-best-effort", func(t *testing.T) {
		l := base(policy.BestEffort)
		l.ReadOnly = append(l.ReadOnly, missing)
		r, s := PrepareLandlock(l)
		defer r.Close()
		if r == nil || s.Outcome != Partial || !strings.Contains(s.Detail, "rules skipped: open "+missing) {
			t.Errorf("%s: want partial naming %s, with a ruleset", s, missing)
		}
	})
	t.Run("below-min-abi", func(t *testing.T) {
		abi, _ := landlockABI()
		if abi >= policy.MaxLandlockABI {
			t.Skipf("the kernel has Landlock ABI %d: no policy can ask for more", abi)
		}
		l := base(policy.Required)
		l.MinABI = abi + 1
		if r, s := PrepareLandlock(l); r != nil || s.Outcome != Failed || !strings.Contains(s.Detail, "below min_abi") {
			t.Errorf("required: %s; want failed", s)
		}
		l.Mode = policy.BestEffort
		r, s := PrepareLandlock(l)
		defer r.Close()
		if r == nil || s.Outcome != Partial || !strings.Contains(s.Detail, "below min_abi") {
			t.Errorf("best effort: %s; want partial", s)
		}
	})
	t.Run("off", func(t *testing.T) {
		r, s := PrepareLandlock(policy.Landlock{Mode: policy.Off})
		if r != nil || s.Outcome != Skipped {
			t.Errorf("%s: want skipped", s)
		}
		if s := r.Restrict(); s.Outcome != Failed {
			t.Errorf("Restrict on no ruleset: %s; want failed", s)
		}
		if s := new(LandlockRuleset).Restrict(); s.Outcome != Failed {
			t.Errorf("Restrict on a zero ruleset: %s; want failed", s)
		}
	})
}

func writeFile(path string) error {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}
