package emitter

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/schema"
)

// Host describes the machine events are about: OCSF device.
type Host struct {
	Hostname      string
	MachineID     string // /etc/machine-id; device.uid
	KernelRelease string
	DeviceType    schema.DeviceTypeID // default Server
}

// DetectHost reads the hostname, /etc/machine-id and the kernel release.
// Missing facts are left empty, never invented.
func DetectHost() Host {
	h := Host{DeviceType: schema.DeviceTypeIDServer}
	h.Hostname, _ = os.Hostname()
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			h.MachineID = strings.TrimSpace(string(b))
			break
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.KernelRelease = unix.ByteSliceToString(u.Release[:])
	}
	return h
}

func (h Host) device() *schema.Device {
	if h.Hostname == "" && h.MachineID == "" {
		return nil
	}
	t := h.DeviceType
	if t == 0 {
		t = schema.DeviceTypeIDServer
	}
	return &schema.Device{
		TypeID:   t,
		Hostname: h.Hostname,
		UID:      h.MachineID,
		OS:       &schema.OS{Name: "Linux", TypeID: schema.OSTypeIDLinux, KernelRelease: h.KernelRelease},
	}
}
