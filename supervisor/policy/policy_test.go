package policy

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, string(got))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	return want
}

func mustLoad(t *testing.T, path string) *Policy {
	t.Helper()
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if diff := cmp.Diff(d.Resolve(), d); diff != "" {
		t.Errorf("Default() is not resolved (-Resolve() +Default()):\n%s", diff)
	}
}

// TestDefaultModes pins the choice behind the default policy: what needs
// privilege degrades, what any process can do to itself is required.
func TestDefaultModes(t *testing.T) {
	want := map[Control]Mode{
		ControlNamespaces:            BestEffort, // CAP_SYS_ADMIN or a user namespace
		ControlCapabilityBoundingSet: BestEffort, // CAP_SETPCAP
		ControlPrivilegeDrop:         BestEffort, // CAP_SETUID/CAP_SETGID to switch
		ControlRlimits:               BestEffort, // raising a hard limit needs CAP_SYS_RESOURCE
		ControlCapabilities:          Required,
		ControlCoreDump:              Required,
		ControlNoNewPrivs:            Required,
		ControlLandlock:              Required,
		ControlSeccomp:               Required,
	}
	d := Default()
	for _, c := range Controls() {
		if got := d.Mode(c); got != want[c] {
			t.Errorf("Default().Mode(%s) = %s, want %s", c, got, want[c])
		}
	}
	if len(Controls()) != len(want) {
		t.Errorf("Controls() has %d controls, want %d", len(Controls()), len(want))
	}
	if d.PrivilegeDrop.WhenUnprivileged != UnprivilegedKeep {
		t.Errorf("an unprivileged supervisor must keep its uid by default, got %s", d.PrivilegeDrop.WhenUnprivileged)
	}
}

func TestControlNames(t *testing.T) {
	var got []string
	for _, c := range Controls() {
		got = append(got, string(c))
	}
	want := []string{"namespaces", "capability_bounding_set", "privilege_drop", "capabilities", "rlimits",
		"core_dump", "no_new_privs", "landlock", "seccomp"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Controls() (-got +want):\n%s", diff)
	}
	if m := Default().Mode("apparmor"); m != "" {
		t.Errorf("Mode of an unknown control = %q, want empty", m)
	}
}

// TestResolve: a zero control is the default control; a control that is
// set is taken as written, with its zero Mode and meaningless zero fields
// filled in.
func TestResolve(t *testing.T) {
	p := (&Policy{Name: "x"}).Resolve()
	want := Default()
	want.Name, want.Version = "x", ""
	if diff := cmp.Diff(p, want); diff != "" {
		t.Errorf("zero policy resolves to (-got +want):\n%s", diff)
	}
	for _, c := range Controls() {
		if p.Mode(c) == "" {
			t.Errorf("%s: zero Mode after Resolve", c)
		}
	}

	partial := (&Policy{
		Name:          "x",
		Landlock:      Landlock{ReadOnly: []string{"/usr/", "/etc"}},
		PrivilegeDrop: PrivilegeDrop{User: "1000", Group: "1000"},
		Seccomp:       Seccomp{LogDenials: true},
	}).Resolve()
	wantLL := Landlock{Mode: Required, ReadOnly: []string{"/etc", "/usr"}, ReadWrite: []string{}, Execute: []string{},
		BindTCP: []uint16{}, ConnectTCP: []uint16{}, MinABI: 1}
	if diff := cmp.Diff(partial.Landlock, wantLL); diff != "" {
		t.Errorf("partial Landlock (-got +want):\n%s", diff)
	}
	wantPD := PrivilegeDrop{Mode: BestEffort, User: "1000", Group: "1000", SupplementaryGroups: []string{},
		WhenUnprivileged: UnprivilegedSwitch}
	if diff := cmp.Diff(partial.PrivilegeDrop, wantPD); diff != "" {
		t.Errorf("partial PrivilegeDrop (-got +want):\n%s", diff)
	}
	if s := partial.Seccomp; s.Mode != Required || s.Profile != "default" || s.Loaded == nil || !s.LogDenials {
		t.Errorf("partial Seccomp = %+v", s)
	}
}

// TestImmutable: Resolve and Parse results share nothing with their input.
func TestImmutable(t *testing.T) {
	p := mustLoad(t, "testdata/valid.yaml")
	uid := p.UID()
	q := p.Resolve()
	q.Landlock.ReadOnly[0] = "/changed"
	q.Rlimits.Limits["nofile"] = Limit{}
	q.Capabilities.Keep[0] = 0
	q.Seccomp.Loaded.Syscalls[0].Names[0] = "changed"
	if p.UID() != uid {
		t.Errorf("changing a resolved copy changed the original:\n%s", p)
	}
	d := Default()
	d.Landlock.ReadOnly[0] = "/changed"
	d.Seccomp.Loaded.Syscalls[0].Names[0] = "changed"
	if Default().Landlock.ReadOnly[0] == "/changed" || DefaultSeccompProfile().Syscalls[0].Names[0] == "changed" {
		t.Error("Default() shares state between calls")
	}
}

// TestValidFiles: the same policy written as YAML, as JSON and as YAML with
// other key order, list order, spellings and comments is one policy.
func TestValidFiles(t *testing.T) {
	yml := mustLoad(t, "testdata/valid.yaml")
	for _, path := range []string{"testdata/valid.json", "testdata/reordered.yaml"} {
		p := mustLoad(t, path)
		if diff := cmp.Diff(p, yml); diff != "" {
			t.Errorf("%s differs from valid.yaml (-got +want):\n%s", path, diff)
		}
		if got, want := string(p.Canonical()), string(yml.Canonical()); got != want {
			t.Errorf("%s canonical:\n%s\nwant:\n%s", path, got, want)
		}
	}
	wantLL := Landlock{
		Mode: Required, ReadOnly: []string{"/etc", "/lib", "/proc", "/usr"}, ReadWrite: []string{"/dev/null", "/work"},
		Execute: []string{"/lib", "/usr/bin", "/usr/lib"}, BindTCP: []uint16{8080}, ConnectTCP: []uint16{80, 443},
		Scope: LandlockScope{AbstractUnix: true}, MinABI: 4,
	}
	if diff := cmp.Diff(yml.Landlock, wantLL); diff != "" {
		t.Errorf("valid.yaml landlock (-got +want):\n%s", diff)
	}
	wantRL := map[string]Limit{"nofile": {1024, 4096}, "nproc": {512, 512}, "as": {Unlimited, Unlimited}, "cpu": {3600, 3660}}
	if diff := cmp.Diff(yml.Rlimits.Limits, wantRL); diff != "" {
		t.Errorf("valid.yaml rlimits (-got +want):\n%s", diff)
	}
	if yml.Seccomp.Loaded == nil || yml.Seccomp.Loaded.DefaultAction != ActErrno {
		t.Errorf("valid.yaml: profile not loaded: %+v", yml.Seccomp)
	}
}

// TestCanonicalStable: comments, key order, flow or block style and
// spelling leave the canonical encoding and the UID unchanged.
func TestCanonicalStable(t *testing.T) {
	a := "name: x\nversion: \"2\"\ncontrols:\n  capability_bounding_set: {keep: [chown, net_raw]}\n  landlock:\n    read_only: [/usr, /etc]\n    execute: [/usr]\n"
	b := "# leading comment\ncontrols:\n  landlock:   # trailing comment\n    execute:\n      - /usr/\n    read_only:\n      - /etc\n      - /usr\n  capability_bounding_set:\n    keep: [CAP_NET_RAW, Cap_Chown]\nversion: '2'\nname: x\n"
	c := `{"controls": {"landlock": {"execute": ["/usr"], "read_only": ["/etc", "/usr"]}, "capability_bounding_set": {"keep": ["CAP_CHOWN", "CAP_NET_RAW"]}}, "version": "2", "name": "x"}`
	pa, err := Parse("a.yaml", []byte(a))
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"b.yaml": b, "c.json": c} {
		p, err := Parse(name, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(p.Canonical()), string(pa.Canonical()); got != want {
			t.Errorf("%s canonical:\n%s\nwant:\n%s", name, got, want)
		}
		if p.UID() != pa.UID() {
			t.Errorf("%s UID %s, want %s", name, p.UID(), pa.UID())
		}
	}
	// The encoding is JSON with sorted keys and no spacing.
	var v map[string]any
	if err := json.Unmarshal(pa.Canonical(), &v); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(v)
	if string(again) != string(pa.Canonical()) {
		t.Errorf("Canonical is not in encoding/json's sorted form:\n%s\n%s", pa.Canonical(), again)
	}
}

func TestCanonicalGolden(t *testing.T) {
	for name, p := range map[string]*Policy{"default.canonical.json": Default(), "valid.canonical.json": mustLoad(t, "testdata/valid.yaml")} {
		got := p.Canonical()
		want := golden(t, name, got)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(g, w); diff != "" {
			t.Errorf("%s (-got +want):\n%s", name, diff)
		}
	}
}

// TestUIDChanges: every field is part of the UID, and so is the profile.
func TestUIDChanges(t *testing.T) {
	changes := map[string]func(p *Policy){
		"name":                 func(p *Policy) { p.Name = "other" },
		"version":              func(p *Policy) { p.Version = "2" },
		"namespaces mode":      func(p *Policy) { p.Namespaces.Mode = Required },
		"namespaces net":       func(p *Policy) { p.Namespaces.Net = false },
		"bounding set keep":    func(p *Policy) { p.CapabilityBoundingSet.Keep = []Capability{10} },
		"privilege drop user":  func(p *Policy) { p.PrivilegeDrop.User, p.PrivilegeDrop.Group = "1000", "1000" },
		"when unprivileged":    func(p *Policy) { p.PrivilegeDrop.WhenUnprivileged = UnprivilegedSwitch },
		"supplementary groups": func(p *Policy) { p.PrivilegeDrop.SupplementaryGroups = []string{"100"} },
		"capabilities mode":    func(p *Policy) { p.Capabilities.Mode = BestEffort },
		"rlimit":               func(p *Policy) { p.Rlimits.Limits = map[string]Limit{"nofile": {1024, 4095}} },
		"rlimit unlimited":     func(p *Policy) { p.Rlimits.Limits = map[string]Limit{"nofile": {1024, Unlimited}} },
		"core dump mode":       func(p *Policy) { p.CoreDump.Mode = Off },
		"no_new_privs mode":    func(p *Policy) { p.NoNewPrivs.Mode = BestEffort },
		"landlock read only":   func(p *Policy) { p.Landlock.ReadOnly = append(p.Landlock.ReadOnly, "/opt") },
		"landlock read write":  func(p *Policy) { p.Landlock.ReadWrite = []string{"/tmp"} },
		"landlock port":        func(p *Policy) { p.Landlock.ConnectTCP = []uint16{443} },
		"landlock scope":       func(p *Policy) { p.Landlock.Scope.Signal = false },
		"landlock min abi":     func(p *Policy) { p.Landlock.MinABI = 2 },
		"seccomp log":          func(p *Policy) { p.Seccomp.LogDenials = true },
		"seccomp default":      func(p *Policy) { p.Seccomp.DefaultAction = ActLog },
		"seccomp profile rules": func(p *Policy) {
			p.Seccomp.Loaded.Syscalls[0].Names = append(p.Seccomp.Loaded.Syscalls[0].Names, "chmod")
		},
	}
	base := Default().UID()
	seen := map[string]string{base: "default"}
	for name, change := range changes {
		p := Default()
		change(p)
		uid := p.UID()
		if other, dup := seen[uid]; dup {
			t.Errorf("%s: UID %s is the same as for %s", name, uid, other)
		}
		seen[uid] = name
	}
	if len(base) != 64 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Errorf("UID %q is not hex SHA-256", base)
	}
}

func TestStringGolden(t *testing.T) {
	for name, p := range map[string]*Policy{"default.txt": Default(), "valid.txt": mustLoad(t, "testdata/valid.yaml")} {
		got := p.String() + "\n"
		if want := golden(t, name, []byte(got)); got != string(want) {
			t.Errorf("%s String():\n%s\nwant:\n%s", name, got, want)
		}
		if n := strings.Count(got, "\n"); n != 1+len(Controls()) {
			t.Errorf("%s: %d lines, want a header and one line per control", name, n)
		}
	}
}

// TestYAMLRoundTrip: what `policy show` prints parses back to the same
// policy.
func TestYAMLRoundTrip(t *testing.T) {
	for name, p := range map[string]*Policy{"testdata/default.yaml": Default(), "testdata/valid.yaml": mustLoad(t, "testdata/valid.yaml")} {
		out := p.YAML()
		q, err := Parse(name, out)
		if err != nil {
			t.Fatalf("%s: Parse(YAML()) = %v\n%s", name, err, out)
		}
		if diff := cmp.Diff(q, p); diff != "" {
			t.Errorf("%s: round trip (-got +want):\n%s", name, diff)
		}
		if !strings.Contains(string(out), "# uid: "+p.UID()+"\n") {
			t.Errorf("%s: YAML() does not name the UID:\n%s", name, out)
		}
	}
	want := golden(t, "default.yaml", Default().YAML())
	if got := Default().YAML(); string(got) != string(want) {
		t.Errorf("Default().YAML():\n%s\nwant:\n%s", got, want)
	}
}

func TestCapabilities(t *testing.T) {
	all := AllCapabilities()
	if len(all) != 41 || all[40] != LastCapability {
		t.Fatalf("AllCapabilities() has %d entries ending in %v, want 41 ending in CAP_CHECKPOINT_RESTORE", len(all), all[len(all)-1])
	}
	for _, c := range all {
		short := strings.ToLower(strings.TrimPrefix(c.String(), "CAP_"))
		for _, s := range []string{c.String(), short, strings.ToUpper(short), "cap_" + short} {
			if got, err := ParseCapability(s); err != nil || got != c {
				t.Errorf("ParseCapability(%q) = %v, %v; want %v", s, got, err, c)
			}
		}
	}
	for s, want := range map[string]Capability{"CAP_CHOWN": 0, "net_bind_service": 10, "Sys_Admin": 21, "CAP_SYS_RESOURCE": 24, "bpf": 39} {
		if got, err := ParseCapability(s); err != nil || got != want {
			t.Errorf("ParseCapability(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "CAP_", "all", "41", "CAP_SYS_ADMN", "cap sys_admin"} {
		if _, err := ParseCapability(bad); err == nil {
			t.Errorf("ParseCapability(%q) succeeded", bad)
		}
	}
	if s := Capability(41).String(); s != "CAP_#41" {
		t.Errorf("Capability(41).String() = %q", s)
	}
	b, err := json.Marshal([]Capability{21, 0})
	if err != nil || string(b) != `["CAP_SYS_ADMIN","CAP_CHOWN"]` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
	var back []Capability
	if err := json.Unmarshal([]byte(`["sys_admin","CAP_CHOWN"]`), &back); err != nil || !reflect.DeepEqual(back, []Capability{21, 0}) {
		t.Errorf("json.Unmarshal = %v, %v", back, err)
	}
}

func TestRlimitResource(t *testing.T) {
	for name, want := range map[string]int{"cpu": 0, "core": 4, "nproc": 6, "nofile": 7, "as": 9, "rttime": 15} {
		if got, ok := RlimitResource(name); !ok || got != want {
			t.Errorf("RlimitResource(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if _, ok := RlimitResource("NOFILE"); ok {
		t.Error("RlimitResource accepts upper case")
	}
}

// TestValidateGo: a policy built in Go gets the same checks, with field
// paths but no file or line.
func TestValidateGo(t *testing.T) {
	p := &Policy{
		Capabilities:          Capabilities{Keep: []Capability{99, 1, 1}},
		CapabilityBoundingSet: CapabilityBoundingSet{Mode: "strict"},
		PrivilegeDrop:         PrivilegeDrop{User: "nobody"},
		Seccomp:               Seccomp{Profile: "mine.json"},
		Landlock:              Landlock{Mode: Off, ReadOnly: []string{"/a\x00b"}},
		Rlimits:               Rlimits{Limits: map[string]Limit{"files": {1, 1}}},
	}
	want := lines(
		"name: required",
		"controls.capability_bounding_set.mode: unknown mode \"strict\" (want required, best_effort or off)",
		"controls.capabilities.keep[0]: unknown capability number 99",
		"controls.capabilities.keep[2]: duplicate CAP_DAC_OVERRIDE",
		"controls.capabilities.keep[1]: CAP_DAC_OVERRIDE is not in controls.capability_bounding_set.keep: a capability the bounding set drops cannot be kept",
		"controls.capabilities.keep[2]: CAP_DAC_OVERRIDE is not in controls.capability_bounding_set.keep: a capability the bounding set drops cannot be kept",
		"controls.privilege_drop.group: missing: set user and group together",
		"controls.seccomp.profile: profile \"mine.json\" is not loaded (use Load or Parse, or set Seccomp.Loaded)",
		"controls.landlock.read_only[0]: \"/a\\x00b\" contains a NUL byte",
		"controls.rlimits.limits.files: unknown limit (want one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
	)
	err := p.Validate()
	if err == nil || err.Error() != want {
		t.Errorf("Validate():\n%v\nwant:\n%s", err, want)
	}
	// Validate does not change the policy.
	if p.Capabilities.Mode != "" || p.Seccomp.Loaded != nil {
		t.Error("Validate changed its receiver")
	}
}

// TestOffAllowsKeep: with the bounding set off (not dropped), a kept
// capability needs no bounding-set entry.
func TestOffAllowsKeep(t *testing.T) {
	src := "name: x\ncontrols:\n  capability_bounding_set: {mode: off}\n  capabilities: {keep: [net_raw]}\n"
	if _, err := Parse("p.yaml", []byte(src)); err != nil {
		t.Error(err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("testdata/nosuch.yaml"); err == nil || err.Error() != "load policy: open testdata/nosuch.yaml: no such file or directory" {
		t.Errorf("Load of a missing file: %v", err)
	}
	if _, err := Load("testdata"); err == nil || err.Error() != "load policy: testdata: not a regular file" {
		t.Errorf("Load of a directory: %v", err)
	}
	if _, err := Parse("", []byte("name: [")); err == nil || !strings.HasPrefix(err.Error(), "<policy>:1: invalid YAML") {
		t.Errorf("Parse with no name: %v", err)
	}
}
