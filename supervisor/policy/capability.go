package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Capability is a Linux capability number, 0 (CAP_CHOWN) to
// [LastCapability] (CAP_CHECKPOINT_RESTORE).
type Capability int

// LastCapability is the highest capability this package knows (the kernel's
// cap_last_cap on Linux 5.9 and later).
const LastCapability Capability = 40

// capabilityNames is indexed by capability number (linux/capability.h).
var capabilityNames = [LastCapability + 1]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// AllCapabilities returns every known capability in numeric order.
func AllCapabilities() []Capability {
	out := make([]Capability, 0, len(capabilityNames))
	for c := range capabilityNames {
		out = append(out, Capability(c))
	}
	return out
}

// String returns the kernel name, e.g. "CAP_SYS_ADMIN", or "CAP_#N" for a
// number this package does not know.
func (c Capability) String() string {
	if c.Valid() {
		return capabilityNames[c]
	}
	return "CAP_#" + strconv.Itoa(int(c))
}

// Valid reports whether c is a known capability number.
func (c Capability) Valid() bool { return c >= 0 && c <= LastCapability }

// ParseCapability parses a capability name, case-insensitively and with or
// without the CAP_ prefix: "CAP_SYS_ADMIN", "sys_admin" and "Cap_Sys_Admin"
// are the same capability.
func ParseCapability(s string) (Capability, error) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for c, n := range capabilityNames {
		if n == name {
			return Capability(c), nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q", s)
}

// MarshalText encodes the kernel name.
func (c Capability) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("unknown capability number %d", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText accepts what ParseCapability accepts.
func (c *Capability) UnmarshalText(b []byte) error {
	v, err := ParseCapability(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
