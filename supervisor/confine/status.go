package confine

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Status is the credentials and confinement state of one thread, as its
// /proc status file reports them.
type Status struct {
	UID, EUID, SUID, FSUID int // the Uid line: real, effective, saved, filesystem
	GID, EGID, SGID, FSGID int // the Gid line
	Groups                 []int

	// Capability sets, bit n for capability n. CapAmb is 0 on kernels
	// before 4.3, which have no ambient set.
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64

	// NoNewPrivs is false on kernels before 4.10, which do not report it.
	NoNewPrivs bool
	// Seccomp is 0 (off), 1 (strict) or 2 (filter); -1 when the kernel
	// does not report it (before 3.8, or built without seccomp).
	Seccomp int
	// SeccompFilters is the number of filters attached; -1 when the kernel
	// does not report it (before 5.9).
	SeccompFilters int
}

// String returns the status on one line, capability sets in /proc's hex.
func (s Status) String() string {
	groups := make([]string, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = strconv.Itoa(g)
	}
	nnp := 0
	if s.NoNewPrivs {
		nnp = 1
	}
	return fmt.Sprintf("uid=%d/%d/%d/%d gid=%d/%d/%d/%d groups=[%s] CapInh=%016x CapPrm=%016x CapEff=%016x CapBnd=%016x CapAmb=%016x NoNewPrivs=%d Seccomp=%d Seccomp_filters=%d",
		s.UID, s.EUID, s.SUID, s.FSUID, s.GID, s.EGID, s.SGID, s.FSGID, strings.Join(groups, " "),
		s.CapInh, s.CapPrm, s.CapEff, s.CapBnd, s.CapAmb, nnp, s.Seccomp, s.SeccompFilters)
}

// parseStatus parses a /proc/<pid>/status file.
//
// Lines are "Name:<tab>value"; lines it does not use, and lines without a
// colon, are ignored, so that a newer kernel's additions cannot break it.
// Uid, Gid, Groups, CapInh, CapPrm, CapEff and CapBnd must be present and
// well formed (every kernel since 2.6 prints them), and a line present but
// malformed, or present twice, is an error naming its line: a confinement
// report must not rest on credentials it did not read.
func parseStatus(data []byte) (Status, error) {
	s := Status{Seccomp: -1, SeccompFilters: -1}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch name {
		case "Uid":
			err = parseIDs(value, &s.UID, &s.EUID, &s.SUID, &s.FSUID)
		case "Gid":
			err = parseIDs(value, &s.GID, &s.EGID, &s.SGID, &s.FSGID)
		case "Groups":
			s.Groups, err = parseGroups(value)
		case "CapInh":
			s.CapInh, err = parseCaps(value)
		case "CapPrm":
			s.CapPrm, err = parseCaps(value)
		case "CapEff":
			s.CapEff, err = parseCaps(value)
		case "CapBnd":
			s.CapBnd, err = parseCaps(value)
		case "CapAmb":
			s.CapAmb, err = parseCaps(value)
		case "NoNewPrivs":
			var v int
			v, err = parseSmall(value, 1)
			s.NoNewPrivs = v == 1
		case "Seccomp":
			s.Seccomp, err = parseSmall(value, 2)
		case "Seccomp_filters":
			s.SeccompFilters, err = parseSmall(value, 1<<30)
		default:
			continue
		}
		if err == nil && seen[name] {
			err = fmt.Errorf("repeated")
		}
		if err != nil {
			return Status{}, fmt.Errorf("status line %d: %s: %w", line, name, err)
		}
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	for _, name := range []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd"} {
		if !seen[name] {
			return Status{}, fmt.Errorf("status: no %s line", name)
		}
	}
	return s, nil
}

// parseIDs parses the four ids of a Uid or Gid line.
func parseIDs(s string, dst ...*int) error {
	f := strings.Fields(s)
	if len(f) != len(dst) {
		return fmt.Errorf("%q: want %d ids", s, len(dst))
	}
	for i, v := range f {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		*dst[i] = int(n)
	}
	return nil
}

func parseGroups(s string) ([]int, error) {
	out := []int{}
	for f := range strings.FieldsSeq(s) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// parseCaps parses a capability set: 1 to 16 hexadecimal digits.
func parseCaps(s string) (uint64, error) {
	if len(s) == 0 || len(s) > 16 {
		return 0, fmt.Errorf("%q: want 1 to 16 hexadecimal digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want hexadecimal digits", s)
	}
	return v, nil
}

// parseSmall parses a decimal in 0..maxVal.
func parseSmall(s string, maxVal int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxVal {
		return 0, fmt.Errorf("%q: want a number in 0..%d", s, maxVal)
	}
	return n, nil
}
