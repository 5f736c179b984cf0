package confine

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// capLastCap is the kernel's highest capability number, or
// policy.LastCapability when /proc does not say.
func capLastCap() int {
	data, err := readProcFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return int(policy.LastCapability)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 || n > 63 {
		return int(policy.LastCapability)
	}
	return n
}

// DropBoundingSet drops from the calling thread's bounding set every
// capability, 0 to cap_last_cap, that p does not keep, with
// prctl(PR_CAPBSET_DROP), and reads CapBnd back. The step is Applied when
// CapBnd holds no capability outside p.Keep, Partial when some were
// dropped but not all, Failed when none could be (EPERM: no CAP_SETPCAP,
// or an LSM said no). Dropping needs CAP_SETPCAP.
func DropBoundingSet(p policy.CapabilityBoundingSet) Step {
	keep := capMask(p.Keep)
	s := newStep(policy.ControlCapabilityBoundingSet, "", "drop all but "+capNames(keep))
	before, err := ReadStatus()
	if err != nil {
		s.fail(err, "cannot read the bounding set: %v", err)
		return s
	}
	s.Evidence["CapBnd_before"] = hex64(before.CapBnd)
	if p.Mode == policy.Off {
		s.Outcome, s.Effective = Skipped, "CapBnd "+hex64(before.CapBnd)
		s.Detail = "mode off: the bounding set is left as it is"
		return s
	}
	last := capLastCap()
	s.Evidence["cap_last_cap"] = strconv.Itoa(last)
	s.Evidence["syscall"] = "prctl(PR_CAPBSET_DROP, cap) for each capability held and not kept"
	failures := map[string][]string{} // errno -> capabilities
	var firstErr error
	for c := 0; c <= last; c++ {
		bit := uint64(1) << uint(c)
		if keep&bit != 0 || before.CapBnd&bit == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			e := errnoName(err)
			failures[e] = append(failures[e], policy.Capability(c).String())
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	for _, e := range slices.Sorted(maps.Keys(failures)) {
		s.Evidence["errors_"+e] = strings.Join(failures[e], ",")
	}
	after, err := ReadStatus()
	if err != nil {
		s.fail(err, "cannot read the bounding set back: %v", err)
		return s
	}
	s.Evidence["CapBnd"] = hex64(after.CapBnd)
	s.Effective = fmt.Sprintf("CapBnd %s (%s)", hex64(after.CapBnd), capSummary(after.CapBnd))
	s.Evidence["CapBnd_names"] = capNames(after.CapBnd)
	needed := before.CapBnd &^ keep
	left := after.CapBnd &^ keep
	dropped := needed &^ left
	missing := keep &^ after.CapBnd
	switch {
	case left == 0:
		s.Outcome = Applied
		s.Detail = fmt.Sprintf("dropped %d capabilities from the bounding set", capCount(dropped))
		if needed == 0 {
			s.Detail = "the bounding set held nothing to drop"
		}
	case dropped != 0:
		s.Outcome = Partial
		s.Errno = errnoName(firstErr)
		s.Detail = fmt.Sprintf("dropped %d of %d capabilities; still in the bounding set: %s", capCount(dropped), capCount(needed), capSummary(left))
	default:
		s.fail(firstErr, "no capability could be dropped from the bounding set (%d still there)%s", capCount(left), eperm(firstErr, " (CAP_SETPCAP is missing, or an LSM refused)"))
	}
	if missing != 0 {
		s.Detail += fmt.Sprintf("; kept capabilities already absent from the bounding set: %s", capNames(missing))
	}
	return s
}

// capSummary names a few capabilities, or counts many.
func capSummary(m uint64) string {
	if n := capCount(m); n > 4 {
		return fmt.Sprintf("%d capabilities", n)
	}
	return capNames(m)
}

// eperm returns why when err is EPERM, "" otherwise.
func eperm(err error, why string) string {
	if errnoName(err) == "EPERM" {
		return why
	}
	return ""
}

// capSets are the names of the four sets, in the order of the steps.
var capSets = []string{"effective", "permitted", "inheritable", "ambient"}

// SetCapabilities sets the calling thread's effective, permitted and
// inheritable sets to p.Keep with capset(2) and its ambient set to p.Keep
// (PR_CAP_AMBIENT_CLEAR_ALL, then PR_CAP_AMBIENT_RAISE for each kept
// capability, so that they survive execve as a non-root uid). Call it after
// the uid switch. It returns one step per set, each with the set read
// back: Applied when it equals p.Keep. A kept capability the thread does
// not hold cannot be gained (Partial); one the kernel would not let go
// leaves the set Partial or Failed. bounding is the bounding-set control:
// a kept capability must be in it to be inheritable and ambient.
func SetCapabilities(p policy.Capabilities, bounding policy.CapabilityBoundingSet) []Step {
	keep := capMask(p.Keep)
	steps := make([]Step, len(capSets))
	for i, set := range capSets {
		steps[i] = newStep(policy.ControlCapabilities, set, "keep "+capNames(keep))
	}
	before, err := ReadStatus()
	if err != nil {
		for i := range steps {
			steps[i].fail(err, "cannot read the capability sets: %v", err)
		}
		return steps
	}
	if p.Mode == policy.Off {
		for i, v := range setValues(before) {
			steps[i].Outcome, steps[i].Effective = Skipped, capNames(v)
			steps[i].Evidence["value"] = hex64(v)
			steps[i].Detail = "mode off: the capability sets are left as they are"
		}
		return steps
	}
	errs := make([]error, len(capSets))
	call := make([]string, len(capSets))

	// Ambient first: a capability leaves the ambient set when it leaves
	// permitted or inheritable anyway, and clearing needs no privilege.
	call[3] = "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)"
	errs[3] = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

	// What the kernel lets capset(2) ask for: permitted only shrinks;
	// inheritable stays within the old inheritable and permitted sets
	// (without CAP_SETPCAP) and within the old inheritable and bounding
	// sets.
	prm := keep & before.CapPrm
	inh := keep & (before.CapInh | before.CapPrm) & (before.CapInh | before.CapBnd)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		data[i] = unix.CapUserData{
			Effective:   uint32(prm >> (32 * i)),
			Permitted:   uint32(prm >> (32 * i)),
			Inheritable: uint32(inh >> (32 * i)),
		}
	}
	_, _, e := unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	capsetCall := fmt.Sprintf("capset(v3, effective=%s permitted=%s inheritable=%s)", hex64(prm), hex64(prm), hex64(inh))
	for i := range 3 {
		call[i] = capsetCall
		if e != 0 {
			errs[i] = e
		}
	}
	var raised []string
	for c := range 64 {
		if keep&(1<<uint(c)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil && errs[3] == nil {
			errs[3] = err
		}
		raised = append(raised, policy.Capability(c).String())
	}
	if len(raised) > 0 {
		call[3] += "; prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE) for " + strings.Join(raised, ",")
	}

	after, err := ReadStatus()
	if err != nil {
		for i := range steps {
			steps[i].fail(err, "cannot read the capability sets back: %v", err)
		}
		return steps
	}
	bset := capMask(bounding.Keep)
	old, now := setValues(before), setValues(after)
	for i := range steps {
		s := &steps[i]
		s.Evidence["syscall"] = call[i]
		s.Evidence["before"] = hex64(old[i])
		s.Evidence["value"] = hex64(now[i])
		s.Effective = capNames(now[i])
		excess, missing := now[i]&^keep, keep&^now[i]
		switch {
		case excess == 0 && missing == 0:
			s.Outcome = Applied
		case excess != 0 && old[i]&^now[i] == 0:
			s.fail(errs[i], "the %s set still holds %s", capSets[i], capNames(excess))
		case excess != 0:
			s.Outcome, s.Errno = Partial, errnoName(errs[i])
			s.Detail = fmt.Sprintf("the %s set still holds %s", capSets[i], capNames(excess))
		default:
			s.Outcome, s.Errno = Partial, errnoName(errs[i])
			s.Detail = fmt.Sprintf("kept capabilities missing from the %s set: %s (a capability not held cannot be gained)", capSets[i], capNames(missing))
			if i >= 2 && bounding.Mode != policy.Off && missing&^bset != 0 {
				s.Detail += "; not in the bounding set's keep list: " + capNames(missing&^bset)
			}
		}
	}
	return steps
}

// setValues returns the effective, permitted, inheritable and ambient sets.
func setValues(st Status) []uint64 {
	return []uint64{st.CapEff, st.CapPrm, st.CapInh, st.CapAmb}
}
