package supervisor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/internal/faultinject"
	"github.com/sandtrail/sandtrail/schema"
	"github.com/sandtrail/sandtrail/supervisor"
)

// The test binary plays three roles: the tests; the helper that
// supervisor.Launch re-executes (argv[1] == HelperCommand); and, with
// SANDTRAIL_TEST_PROBER=1, the sandboxed program that reports what it can
// still do.
func TestMain(m *testing.M) {
	faultinject.Main() // a wrapper re-execution: install the rules, exec the rest
	if len(os.Args) > 1 && os.Args[1] == supervisor.HelperCommand {
		supervisor.HelperMain()
	}
	if os.Getenv("SANDTRAIL_TEST_PROBER") == "1" {
		prober()
		os.Exit(0)
	}
	if mode := os.Getenv("SANDTRAIL_TEST_INNER"); mode != "" {
		os.Exit(inner(mode))
	}
	os.Exit(m.Run())
}

// proberReport is what the sandboxed prober prints on stdout.
type proberReport struct {
	Status   map[string]string `json:"status"`   // selected /proc/self/status lines
	Attempts map[string]string `json:"attempts"` // what it tried -> "ok" or the errno name
}

// prober tries what a confined process must not be able to do.
func prober() {
	r := proberReport{Status: map[string]string{}, Attempts: map[string]string{}}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if ok {
				switch k {
				case "Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters":
					r.Status[k] = strings.TrimSpace(v)
				}
			}
		}
	}
	res := func(err error) string {
		if err == nil {
			return "ok"
		}
		if e, ok := err.(unix.Errno); ok {
			return unix.ErrnoName(e)
		}
		if pe, ok := err.(*os.PathError); ok {
			if e, ok := pe.Err.(unix.Errno); ok {
				return unix.ErrnoName(e)
			}
		}
		return err.Error()
	}
	r.Attempts["write_outside_landlock"] = res(os.WriteFile(os.Getenv("SANDTRAIL_TEST_OUTSIDE"), []byte("x"), 0o600))
	r.Attempts["unshare_user"] = res(unix.Unshare(unix.CLONE_NEWUSER))
	_, _, errno := unix.Syscall(unix.SYS_KEYCTL, 0, 0, 0)
	r.Attempts["keyctl"] = res(errnoErr(errno))
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{{Effective: 1 << unix.CAP_SYS_ADMIN, Permitted: 1 << unix.CAP_SYS_ADMIN}}
	r.Attempts["capset_sys_admin"] = res(unix.Capset(&hdr, &data[0]))
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// recorder is an in-memory Recorder: it stamps the envelope the emitter
// would (so the events can be validated) and keeps the events in order.
// The emitter's own stamping and durability are tested in package emitter.
type recorder struct {
	mu     sync.Mutex
	events []schema.Event
	data   [][]byte
	errs   []error
	fail   error
	ended  bool
}

// End records the run's last events; the recorder also checks that
// nothing follows them.
func (r *recorder) End(ctx context.Context, evs ...schema.Event) error {
	if err := r.Emit(ctx, evs...); err != nil {
		return err
	}
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	return nil
}

func (r *recorder) Emit(_ context.Context, evs ...schema.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if r.ended {
		r.errs = append(r.errs, fmt.Errorf("events %v recorded after the run ended", evs))
	}
	for _, ev := range evs {
		b := ev.EventBase()
		md := b.Metadata
		md.Version = schema.Version
		md.Product = &schema.Product{Name: "sandtrail", VendorName: "sandtrail"}
		md.Profiles = []string{"host", "security_control", "linux/linux_users"}
		md.Extensions = []schema.Extension{{Name: "linux", UID: "1", Version: schema.Version}}
		md.Sequence = schema.Ptr(len(r.events) + 1)
		if b.Time == 0 {
			b.Time = 1
		}
		setDevice(ev)
		data, err := ev.AppendJSON(nil)
		if err == nil {
			err = schema.Validate(data)
		}
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("event %d (%s %s): %w", len(r.events)+1, ev.ClassName(), md.EventCode, err))
		}
		r.events = append(r.events, ev)
		r.data = append(r.data, data)
	}
	return nil
}

func setDevice(ev schema.Event) {
	d := &schema.Device{TypeID: schema.DeviceTypeIDServer, Hostname: "test-host", OS: &schema.OS{Name: "Linux", TypeID: schema.OSTypeIDLinux}}
	switch x := ev.(type) {
	case *schema.ComplianceFinding:
		x.Device = d
	case *schema.DetectionFinding:
		x.Device = d
	case *schema.DeviceConfigStateChange:
		x.Device = d
	case *schema.ProcessActivity:
		x.Device = d
	}
}

// codes returns the event codes recorded, in order.
func (r *recorder) codes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.EventBase().Metadata.EventCode)
	}
	return out
}

func (r *recorder) find(code string) []schema.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schema.Event
	for _, ev := range r.events {
		if ev.EventBase().Metadata.EventCode == code {
			out = append(out, ev)
		}
	}
	return out
}
