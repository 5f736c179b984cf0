package confine

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

func newStep(c policy.Control, check, requested string) Step {
	return Step{Control: string(c), Check: check, Requested: requested, Evidence: map[string]string{}}
}

// fail marks the step Failed with err's errno and a detail.
func (s *Step) fail(err error, format string, args ...any) {
	s.Outcome = Failed
	if name := errnoName(err); name != "" && s.Errno == "" {
		s.Errno = name
	}
	s.Detail = fmt.Sprintf(format, args...)
}

// errnoName names the errno in err, preferring EOPNOTSUPP to its alias
// ENOTSUP (the name Landlock and seccomp document), or "" when err holds
// no errno.
func errnoName(err error) string {
	var e unix.Errno
	if !errors.As(err, &e) || e == 0 {
		return ""
	}
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP"
	}
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}

// capMask is the set of capabilities as the kernel stores it.
func capMask(caps []policy.Capability) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

// capNames lists the capabilities in m by name, "none" when m is empty.
func capNames(m uint64) string {
	if m == 0 {
		return "none"
	}
	var names []string
	for c := range 64 {
		if m&(1<<uint(c)) != 0 {
			names = append(names, policy.Capability(c).String())
		}
	}
	return strings.Join(names, ",")
}

// capCount is the number of capabilities in m.
func capCount(m uint64) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// hex64 is a capability set as /proc prints it.
func hex64(m uint64) string { return fmt.Sprintf("%016x", m) }
