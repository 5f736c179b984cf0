package probe

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseStatus reads the credentials from a /proc/<pid>/status file.
//
// Lines are "Name:<tab>value"; names it does not use, and lines without a
// colon, are ignored, so that new kernels' additions cannot break it. Uid,
// Gid, CapInh, CapPrm, CapEff and CapBnd must be present and well formed:
// every kernel since 2.6 prints them, and without them the probe would
// report credentials it never read. CapAmb (4.3), NoNewPrivs (4.10),
// Seccomp (3.8) and Seccomp_filters (5.9) are optional; a missing CapAmb
// is an empty set (the kernel has no ambient capabilities), a missing
// NoNewPrivs is false, a missing Seccomp or Seccomp_filters is -1.
// A field present but malformed is an error naming its line.
func parseStatus(r io.Reader) (Creds, error) {
	c := Creds{SeccompMode: -1, SeccompFilters: -1}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch name {
		case "Uid":
			err = ids(value, &c.UID, &c.EUID, &c.SUID, &c.FSUID)
		case "Gid":
			err = ids(value, &c.GID, &c.EGID, &c.SGID, &c.FSGID)
		case "Groups":
			c.Groups = []int{}
			for f := range strings.FieldsSeq(value) {
				g, gerr := strconv.Atoi(f)
				if gerr != nil {
					err = gerr
					break
				}
				c.Groups = append(c.Groups, g)
			}
		case "CapInh":
			err = c.CapInh.UnmarshalText([]byte(value))
		case "CapPrm":
			err = c.CapPrm.UnmarshalText([]byte(value))
		case "CapEff":
			err = c.CapEff.UnmarshalText([]byte(value))
		case "CapBnd":
			err = c.CapBnd.UnmarshalText([]byte(value))
		case "CapAmb":
			err = c.CapAmb.UnmarshalText([]byte(value))
		case "NoNewPrivs":
			var v int
			if v, err = small(value, 1); err == nil {
				c.NoNewPrivs = v == 1
			}
		case "Seccomp":
			c.SeccompMode, err = small(value, 2)
		case "Seccomp_filters":
			c.SeccompFilters, err = small(value, 1<<30)
		default:
			continue
		}
		if err != nil {
			return Creds{}, fmt.Errorf("line %d: %s: %w", line, name, err)
		}
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return Creds{}, err
	}
	for _, name := range []string{"Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd"} {
		if !seen[name] {
			return Creds{}, fmt.Errorf("no %s line", name)
		}
	}
	return c, nil
}

// ids parses the four ids of a Uid or Gid line: real, effective, saved,
// filesystem.
func ids(s string, dst ...*int) error {
	f := strings.Fields(s)
	if len(f) != len(dst) {
		return fmt.Errorf("%q: want %d ids", s, len(dst))
	}
	for i, v := range f {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return err
		}
		*dst[i] = int(n)
	}
	return nil
}

// small parses a decimal in 0..maxVal.
func small(s string, maxVal int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > maxVal {
		return 0, fmt.Errorf("%d out of range 0..%d", n, maxVal)
	}
	return n, nil
}
