package probe

import (
	"fmt"
	"strconv"
	"strings"
)

// CapSet is a capability set as the kernel stores it: bit n is capability
// n. Its text form is /proc's: 16 hexadecimal digits.
type CapSet uint64

// CapSetpcap is CAP_SETPCAP, which a bounding-set drop requires.
const CapSetpcap = 8

// capNames are the capability names in number order, as capabilities(7)
// spells them without the CAP_ prefix.
const capNames = "chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap " +
	"linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner " +
	"sys_module sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice " +
	"sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap " +
	"mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf " +
	"checkpoint_restore"

// CapName returns the name of capability c ("setpcap"), or "cap_N" for a
// number this package does not know.
func CapName(c int) string {
	names := strings.Fields(capNames)
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return "cap_" + strconv.Itoa(c)
}

// Has reports whether capability c is in the set.
func (s CapSet) Has(c int) bool { return c >= 0 && c < 64 && s&(1<<c) != 0 }

// Names lists the capabilities in the set, by number.
func (s CapSet) Names() []string {
	var out []string
	for c := range 64 {
		if s.Has(c) {
			out = append(out, CapName(c))
		}
	}
	return out
}

// String returns the set as /proc prints it: 16 hexadecimal digits.
func (s CapSet) String() string { return fmt.Sprintf("%016x", uint64(s)) }

// MarshalText returns the /proc form.
func (s CapSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the /proc form: 1 to 16 hexadecimal digits.
func (s *CapSet) UnmarshalText(b []byte) error {
	if len(b) == 0 || len(b) > 16 {
		return fmt.Errorf("probe: capability set %q: want 1 to 16 hexadecimal digits", b)
	}
	v, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		return fmt.Errorf("probe: capability set %q: %w", b, err)
	}
	*s = CapSet(v)
	return nil
}
