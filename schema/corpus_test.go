package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/schema"
)

// TestValidCorpus: every file under testdata/events/valid validates, lies
// in the directory named after its class_uid's class, and carries
// sandtrail's envelope; every class has at least three.
func TestValidCorpus(t *testing.T) {
	root := filepath.Join(corpusDir, "valid")
	var files []string
	perClass := map[string]int{} // by directory; each file checks its directory is its class
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			if rel, _ := filepath.Rel(root, path); strings.Contains(rel, string(filepath.Separator)) {
				t.Errorf("%s: valid events lie one level deep, in their class directory", path)
				return fs.SkipDir
			}
		case filepath.Ext(path) != ".json":
			t.Errorf("%s: not a .json file", path)
		default:
			files = append(files, path)
			perClass[filepath.Base(filepath.Dir(path))]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		t.Run(strings.TrimSuffix(filepath.ToSlash(rel), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(data); err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			var ev corpusEvent
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatal(err)
			}
			c, ok := schema.Class(ev.ClassUID)
			if dir := filepath.Base(filepath.Dir(path)); !ok || c.Name != dir {
				t.Errorf("class_uid %d is class %q, but the file is in directory %q", ev.ClassUID, c.Name, dir)
			}
			checkEnvelope(t, &ev)
			if prev, ok := uids[ev.Metadata.UID]; ok {
				t.Errorf("metadata.uid %s is also the uid of %s", ev.Metadata.UID, prev)
			}
			uids[ev.Metadata.UID] = path
		})
	}
	for _, c := range schema.Classes() {
		if n := perClass[c.Name]; n < 3 {
			t.Errorf("class %s has %d valid events, want at least 3", c.Name, n)
		}
	}
}

// corpusEvent is the part of an event that the envelope rules look at.
type corpusEvent struct {
	ClassUID   int   `json:"class_uid"`
	SeverityID int   `json:"severity_id"`
	Time       int64 `json:"time"`
	Metadata   struct {
		Version        string `json:"version"`
		UID            string `json:"uid"`
		CorrelationUID string `json:"correlation_uid"`
		Sequence       *int   `json:"sequence"`
		EventCode      string `json:"event_code"`
		LogName        string `json:"log_name"`
		Product        struct {
			Name       string `json:"name"`
			VendorName string `json:"vendor_name"`
			Version    string `json:"version"`
		} `json:"product"`
		Profiles   []string `json:"profiles"`
		Extensions []struct {
			Name    string `json:"name"`
			UID     string `json:"uid"`
			Version string `json:"version"`
		} `json:"extensions"`
	} `json:"metadata"`
	Device *struct {
		Hostname string `json:"hostname"`
		UID      string `json:"uid"`
		OS       struct {
			Name   string `json:"name"`
			TypeID int    `json:"type_id"`
		} `json:"os"`
	} `json:"device"`
	Policy *struct {
		UID string `json:"uid"`
	} `json:"policy"`
}

var (
	uuidV7Pattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	eventCode     = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkEnvelope holds the corpus to what sandtrail emits (EVENTS.md).
func checkEnvelope(t *testing.T, ev *corpusEvent) {
	t.Helper()
	m := &ev.Metadata
	if m.Version != "1.8.0" || m.Product.Name != "sandtrail" || m.Product.VendorName != "sandtrail" || m.Product.Version == "" {
		t.Errorf("metadata version %q product %+v, want 1.8.0 and sandtrail with a version", m.Version, m.Product)
	}
	if !uuidV7Pattern.MatchString(m.UID) {
		t.Errorf("metadata.uid %q is not a UUID v7", m.UID)
	} else if ms, _ := strconv.ParseInt(strings.ReplaceAll(m.UID[:13], "-", ""), 16, 64); ms > ev.Time || ev.Time-ms > 1000 {
		t.Errorf("metadata.uid %s is from %d ms, the event from %d", m.UID, ms, ev.Time)
	}
	if (m.CorrelationUID == "") != (m.Sequence == nil) {
		t.Errorf("correlation_uid %q and sequence %v: a run event has both, another event neither", m.CorrelationUID, m.Sequence)
	}
	if m.Sequence != nil && *m.Sequence < 1 {
		t.Errorf("metadata.sequence = %d, want >= 1", *m.Sequence)
	}
	if !eventCode.MatchString(m.EventCode) {
		t.Errorf("metadata.event_code %q is not a stable machine code", m.EventCode)
	}
	if ev.ClassUID == 6008 {
		if !strings.HasPrefix(m.LogName, "sandtrail.dlq.") {
			t.Errorf("dead letter log_name %q, want sandtrail.dlq.<reason>", m.LogName)
		}
	} else if ev.Device == nil {
		t.Errorf("no device")
	} else if want := "sandtrail.events." + strconv.Itoa(ev.ClassUID) + "." + strconv.Itoa(ev.SeverityID) + "." +
		strings.ReplaceAll(ev.Device.Hostname, ".", "_"); m.LogName != want {
		t.Errorf("metadata.log_name = %q, want %q", m.LogName, want)
	}
	for _, p := range []string{"host", "security_control", "linux/linux_users"} {
		if !slices.Contains(m.Profiles, p) {
			t.Errorf("metadata.profiles %q lacks %s", m.Profiles, p)
		}
	}
	if len(m.Extensions) != 1 || m.Extensions[0].Name != "linux" || m.Extensions[0].UID != "1" || m.Extensions[0].Version != "1.8.0" {
		t.Errorf("metadata.extensions = %+v, want the linux extension only", m.Extensions)
	}
	if d := ev.Device; d != nil && (d.UID == "" || d.Hostname == "" || d.OS.Name != "Linux" || d.OS.TypeID != 200) {
		t.Errorf("device %+v, want hostname, uid and os Linux (200)", *d)
	}
	if ev.Policy != nil && !sha256Pattern.MatchString(ev.Policy.UID) {
		t.Errorf("policy.uid %q is not a SHA-256", ev.Policy.UID)
	}
	if ev.Time < 1e12 || ev.Time > 1e13 {
		t.Errorf("time %d is not in milliseconds", ev.Time)
	}
}

// want is an invalid event's expected error. testdata/events/invalid holds
// <name>.json, one mutation of a valid event, beside <name>.want:
//
//	{"base": "valid/<class>/<event>.json", "path": "/json/pointer",
//	 "kind": "schema|semantic|syntax", "reason": "a substring of the reason"}
//
// path, kind and reason are required; base (the event mutated) and sentinel
// (an error of package schema that errors.Is must match) are optional.
type want struct {
	Base     string `json:"base"`     // the valid event it mutates, relative to testdata/events
	Path     string `json:"path"`     // JSON Pointer
	Kind     string `json:"kind"`     // schema, semantic or syntax
	Reason   string `json:"reason"`   // a substring of the reason
	Sentinel string `json:"sentinel"` // optional: the error errors.Is must match
}

var sentinels = map[string]error{"ErrUnknownClass": schema.ErrUnknownClass}

func readWant(t *testing.T, path string) want {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, k := range []string{"path", "kind", "reason"} {
		if _, ok := keys[k]; !ok {
			t.Fatalf("%s has no %q", path, k)
		}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var w want
	if err := d.Decode(&w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if w.Reason == "" {
		t.Fatalf("%s: empty reason", path)
	}
	if !slices.Contains([]string{"schema", "semantic", "syntax"}, w.Kind) {
		t.Fatalf("%s: kind %q is not schema, semantic or syntax", path, w.Kind)
	}
	if _, ok := sentinels[w.Sentinel]; w.Sentinel != "" && !ok {
		t.Fatalf("%s: unknown sentinel %q", path, w.Sentinel)
	}
	return w
}

// checkRejected fails t unless err is the ValidationError w describes.
func checkRejected(t *testing.T, err error, w want) {
	t.Helper()
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *schema.ValidationError", err)
	}
	if ve.Path != w.Path || ve.Kind.String() != w.Kind || !strings.Contains(ve.Reason, w.Reason) {
		t.Errorf("Validate = path %q kind %s reason %q,\nwant     path %q kind %s reason containing %q",
			ve.Path, ve.Kind, ve.Reason, w.Path, w.Kind, w.Reason)
	}
	if w.Sentinel != "" && !errors.Is(err, sentinels[w.Sentinel]) {
		t.Errorf("errors.Is(%v, schema.%s) = false, want true", err, w.Sentinel)
	}
}

// TestInvalidCorpus: every .json under testdata/events/invalid is rejected
// with the error its .want describes; every .json has a .want and every
// .want a .json.
func TestInvalidCorpus(t *testing.T) {
	dir := filepath.Join(corpusDir, "invalid")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]map[string]bool{} // name -> extensions present
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".json" && ext != ".want") {
			t.Errorf("%s: unexpected entry %s", dir, e.Name())
			continue
		}
		name := strings.TrimSuffix(e.Name(), ext)
		if names[name] == nil {
			names[name] = map[string]bool{}
		}
		names[name][ext] = true
	}
	if len(names) == 0 {
		t.Fatalf("no invalid events in %s", dir)
	}
	for name, exts := range names {
		if !exts[".json"] || !exts[".want"] {
			t.Errorf("%s: %s needs both a .json and a .want", dir, name)
			delete(names, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		t.Run(name, func(t *testing.T) {
			w := readWant(t, filepath.Join(dir, name+".want"))
			data, err := os.ReadFile(filepath.Join(dir, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			checkRejected(t, schema.Validate(data), w)
			if w.Base != "" {
				base, err := os.ReadFile(filepath.Join(corpusDir, w.Base))
				if err != nil {
					t.Fatalf("base: %v", err)
				}
				if err := schema.Validate(base); err != nil {
					t.Errorf("base %s is not valid: %v", w.Base, err)
				}
			}
		})
	}
}

// TestInvalidGenerated holds the invalid events that are generated at run
// time rather than committed: too big, or not valid UTF-8 text.
func TestInvalidGenerated(t *testing.T) {
	base := readCorpus(t, "valid/compliance_finding/no-new-privs-pass.json")
	withMessage := func(raw []byte) []byte {
		// The message is a plain string in the golden: swap its content.
		var ev map[string]any
		if err := json.Unmarshal(base, &ev); err != nil {
			t.Fatal(err)
		}
		old, _ := json.Marshal(ev["message"])
		key := []byte(`"message": `)
		i := bytes.Index(base, append(key, old...))
		if i < 0 {
			t.Fatal("message not found in the base event")
		}
		i += len(key)
		out := append([]byte(nil), base[:i+1]...)
		out = append(out, raw...)
		return append(out, base[i+len(old)-1:]...)
	}
	deep := func(n int) []byte {
		nested := strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
		return bytes.Replace(base, []byte(`"compliance": {`), []byte(`"unmapped": `+nested+`, "compliance": {`), 1)
	}
	tests := []struct {
		name string
		data []byte
		want want
	}{
		{"string-10mb", withMessage(bytes.Repeat([]byte("a"), 10<<20)),
			want{Path: "", Kind: "semantic", Reason: "more than the limit of 1048576"}},
		{"invalid-utf8", withMessage([]byte("make \xff\xfe test")),
			want{Path: "/message", Kind: "semantic", Reason: "not valid UTF-8"}},
		{"invalid-utf8-overlong", withMessage([]byte("/etc\xc0\xafpasswd")),
			want{Path: "/message", Kind: "semantic", Reason: "not valid UTF-8"}},
		{"invalid-utf8-surrogate", withMessage([]byte("\xed\xa0\x80")),
			want{Path: "/message", Kind: "semantic", Reason: "not valid UTF-8"}},
		{"nesting-too-deep", deep(70),
			want{Path: "/unmapped" + strings.Repeat("/a", 63), Kind: "semantic", Reason: "nesting deeper than 64"}},
		{"empty", nil, want{Path: "", Kind: "syntax", Reason: "empty input"}},
		{"whitespace", []byte(" \n\t"), want{Path: "", Kind: "syntax", Reason: "empty input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRejected(t, schema.Validate(tt.data), tt.want)
		})
	}

	// The 10 MB message is refused for its size alone: with a limit above
	// it, the same event is valid.
	big := withMessage(bytes.Repeat([]byte("a"), 10<<20))
	v := schema.Validator{MaxEventBytes: 11 << 20}
	if err := v.Validate(big); err != nil {
		t.Errorf("Validator{MaxEventBytes: 11 MiB}.Validate(10 MB message) = %v, want nil", err)
	}
	if err := schema.Validate(deep(50)); err != nil {
		t.Errorf("Validate(unmapped nested 50 deep) = %v, want nil", err)
	}
}

func readCorpus(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestObservableNames: OCSF 1.8.0 (observable.name) lets an array
// attribute in an observable name be written three ways: resources.uid,
// resources[].uid and resources[0].uid. All three name an attribute path of
// the class, so the event is valid.
func TestObservableNames(t *testing.T) {
	base := readCorpus(t, "valid/detection_finding/capbset-degraded.json")
	const name = `"name": "evidences.process.pid"`
	if !bytes.Contains(base, []byte(name)) {
		t.Fatalf("the base event has no observable %s", name)
	}
	for _, tt := range []struct {
		path  string
		valid bool
	}{
		{"evidences.process.pid", true},
		{"evidences[].process.pid", true},
		{"evidences[0].process.pid", true},
		{"evidences[3].actor.process.parent_process.name", true},
		{"evidences[].process.nope", false},
		{"evidences[x].process.pid", false},
		{"evidences[0]process.pid", false},
		{"evidences.process[].pid", false}, // process is not an array
		{"process.pid", false},             // a Process Activity path, not a Detection Finding one
	} {
		t.Run(tt.path, func(t *testing.T) {
			data := bytes.Replace(base, []byte(name), []byte(`"name": "`+tt.path+`"`), 1)
			err := schema.Validate(data)
			if tt.valid && err != nil {
				t.Errorf("Validate(observable %q) = %v, want nil", tt.path, err)
			}
			if !tt.valid {
				checkRejected(t, err, want{Path: "/observables/3/name", Kind: "semantic", Reason: "is not an attribute path"})
			}
		})
	}
}

// TestRelatedEventObservables: the observables of a related event name
// attributes of that event (related_events[].type_uid, observable.type_uid
// and event_uid say which), not of the finding that lists it. A Detection
// Finding may point at the Kernel Activity it alerts on with the observable
// kernel.system_call, although a Detection Finding has no kernel attribute.
func TestRelatedEventObservables(t *testing.T) {
	base := readCorpus(t, "valid/detection_finding/seccomp-denied-alert.json")
	var ev map[string]any
	if err := json.Unmarshal(base, &ev); err != nil {
		t.Fatal(err)
	}
	rel := ev["finding_info"].(map[string]any)["related_events"].([]any)[0].(map[string]any)
	if rel["type_uid"].(float64) != 100304 {
		t.Fatalf("related event type_uid = %v, want 100304", rel["type_uid"])
	}
	rel["observables"] = []any{map[string]any{
		"name": "kernel.system_call", "type_id": 99, "type": "System Call", "value": "ptrace",
		"type_uid": 100304, "event_uid": rel["uid"],
	}}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(data); err != nil {
		t.Errorf("Validate(related Kernel Activity observable kernel.system_call) = %v, want nil", err)
	}
}

// TestEscapedKeys: a key written with JSON escapes is the same key.
// "class\u005fuid" is class_uid, as "severity\u005fid" is severity_id.
func TestEscapedKeys(t *testing.T) {
	base := readCorpus(t, "valid/compliance_finding/namespaces-pass.json")
	for _, key := range []string{"class_uid", "severity_id", "metadata"} {
		t.Run(key, func(t *testing.T) {
			escaped := strings.Replace(key, "_", `\u005f`, 1)
			if escaped == key {
				escaped = `\u006d` + key[1:]
			}
			data := bytes.Replace(base, []byte(`"`+key+`":`), []byte(`"`+escaped+`":`), 1)
			if bytes.Equal(data, base) {
				t.Fatalf("no key %q in the base event", key)
			}
			if err := schema.Validate(data); err != nil {
				t.Errorf("Validate(key written %q) = %v, want nil", escaped, err)
			}
		})
	}
}
