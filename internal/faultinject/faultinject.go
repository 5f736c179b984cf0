// Package faultinject reproduces degraded hosts honestly, on the real kernel:
// it runs a command under a seccomp filter that makes chosen system calls
// fail with chosen errnos, the way a restrictive host would (an LSM denying
// a bounding-set drop, a kernel without Landlock, a container runtime
// forbidding user namespaces), then execs it. Nothing is mocked: the
// command makes its real system calls and the kernel answers them.
//
// It is for tests (of this module's packages) only. The filter is not a
// security boundary: it allows every architecture other than the native
// one and ignores the x32 syscall bit.
//
// # The wrapper contract
//
// A test binary becomes a wrapper when its TestMain calls [Main] first:
//
//	func TestMain(m *testing.M) {
//		faultinject.Main()
//		os.Exit(m.Run())
//	}
//
// Then running the test binary as
//
//	FAULTINJECT_RULES=capbset_drop_eperm,landlock_enosys <test-binary> -- target args...
//
// installs the rules (see [Parse] for the syntax) on the wrapper process
// and execs target with args, with FAULTINJECT_RULES removed from its
// environment and every other variable kept. The filter survives execve
// and is inherited by every child of target. [Command] builds such a
// re-exec of the running binary. When FAULTINJECT_RULES is unset, Main
// returns at once and the binary runs its tests as usual. When it is set
// but the rules or the command line are wrong, or installing the filter
// fails, the wrapper prints the reason on stderr and exits with status
// 125; if the exec itself fails it exits with 126 (target not executable)
// or 127 (target not found), as env(1) does.
//
// Installing a seccomp filter needs CAP_SYS_ADMIN or no_new_privs. The
// wrapper never sets no_new_privs, because tests need to observe a host
// where it is not yet set: run it as root (CI does), or set no_new_privs
// yourself before calling [Install].
package faultinject

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// EnvRules is the environment variable that turns a binary whose TestMain
// calls [Main] into a wrapper. Its value is a comma-separated list of
// preset names and raw rules, as accepted by [Parse].
const EnvRules = "FAULTINJECT_RULES"

// Preset names, accepted by [Parse], [Command] and in [EnvRules]. The
// numbers below are x86-64's; arm64 presets use its own syscall numbers.
const (
	// CapbsetDropEPERM makes prctl(PR_CAPBSET_DROP, ...) fail with EPERM
	// whatever the capability: the AppArmor case, where CAP_SETPCAP is
	// held but the LSM says no.
	CapbsetDropEPERM = "capbset_drop_eperm"

	// LandlockENOSYS makes landlock_create_ruleset, landlock_add_rule and
	// landlock_restrict_self (444, 445, 446) fail with ENOSYS: a kernel
	// built without Landlock.
	LandlockENOSYS = "landlock_enosys"

	// LandlockEOPNOTSUPP makes the three Landlock calls fail with
	// EOPNOTSUPP: Landlock compiled in but disabled at boot (not in lsm=).
	LandlockEOPNOTSUPP = "landlock_eopnotsupp"

	// SeccompENOSYS is a kernel built without CONFIG_SECCOMP: seccomp(2)
	// fails with ENOSYS, prctl(PR_SET_SECCOMP) and prctl(PR_GET_SECCOMP)
	// with EINVAL (the errnos such a kernel returns).
	SeccompENOSYS = "seccomp_enosys"

	// SeccompEINVAL is a kernel refusing every seccomp operation as
	// invalid (filter mode not built in): seccomp(2) and
	// prctl(PR_SET_SECCOMP) fail with EINVAL; PR_GET_SECCOMP still works.
	SeccompEINVAL = "seccomp_einval"

	// UsernsEPERM forbids new user namespaces as container runtimes do:
	// unshare and clone with CLONE_NEWUSER in their flags fail with EPERM,
	// and clone3 fails with ENOSYS (its flags live in memory a filter
	// cannot read) so that libc falls back to clone.
	UsernsEPERM = "userns_eperm"
)

// Presets returns the names of all presets, in a stable order.
func Presets() []string {
	return []string{CapbsetDropEPERM, LandlockENOSYS, LandlockEOPNOTSUPP, SeccompENOSYS, SeccompEINVAL, UsernsEPERM}
}

// Rule makes one system call fail. It is a plain value; a list of rules is
// applied in order and the first match decides.
type Rule struct {
	// Syscall is the system call number on the running architecture.
	Syscall uintptr
	// Arg0, when not nil, restricts the rule to calls whose first argument
	// matches it (all 64 bits are compared, under Arg0Mask).
	Arg0 *uint64
	// Arg0Mask selects the bits of the first argument that are compared
	// with Arg0: the call matches when arg0&Arg0Mask == *Arg0&Arg0Mask.
	// Zero (the default) means all 64 bits, that is, equality.
	Arg0Mask uint64
	// Errno is what the call returns, without being executed.
	Errno syscall.Errno
}

// String returns the rule in the raw form [Parse] accepts:
// NR[/ARG0[&MASK]]=ERRNO, for example 157/0x18=EPERM.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(r.Syscall), 10))
	if r.Arg0 != nil {
		fmt.Fprintf(&b, "/%#x", *r.Arg0)
		if r.Arg0Mask != 0 {
			fmt.Fprintf(&b, "&%#x", r.Arg0Mask)
		}
	}
	b.WriteByte('=')
	if name := errnoName(r.Errno); name != "" {
		b.WriteString(name)
	} else {
		b.WriteString(strconv.FormatUint(uint64(r.Errno), 10))
	}
	return b.String()
}

// Parse turns specs into rules. Each spec is a comma-separated list of
// items; an item is a preset name (see [Presets]) or a raw rule
// NR[/ARG0[&MASK]]=ERRNO, where NR, ARG0 and MASK are numbers in Go
// syntax (decimal, 0x hex) and ERRNO is a name (EPERM) or a number.
// Empty items are ignored. Parse fails on unknown presets, malformed
// rules, errnos outside 1..4095, and when no rule results.
func Parse(specs ...string) ([]Rule, error) {
	var rules []Rule
	for _, spec := range specs {
		for item := range strings.SplitSeq(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if !strings.Contains(item, "=") {
				p, err := preset(item)
				if err != nil {
					return nil, err
				}
				rules = append(rules, p...)
				continue
			}
			r, err := parseRule(item)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("faultinject: no rules in %q", strings.Join(specs, ","))
	}
	return rules, nil
}

func parseRule(s string) (Rule, error) {
	lhs, errno, _ := strings.Cut(s, "=")
	var r Rule
	nr, arg, hasArg := strings.Cut(lhs, "/")
	n, err := strconv.ParseUint(nr, 0, 32)
	if err != nil {
		return Rule{}, fmt.Errorf("faultinject: rule %q: syscall number: %w", s, err)
	}
	r.Syscall = uintptr(n)
	if hasArg {
		val, mask, hasMask := strings.Cut(arg, "&")
		v, err := strconv.ParseUint(val, 0, 64)
		if err != nil {
			return Rule{}, fmt.Errorf("faultinject: rule %q: arg0: %w", s, err)
		}
		r.Arg0 = &v
		if hasMask {
			if r.Arg0Mask, err = strconv.ParseUint(mask, 0, 64); err != nil {
				return Rule{}, fmt.Errorf("faultinject: rule %q: mask: %w", s, err)
			}
		}
	}
	e, ok := errnoValue(errno)
	if !ok {
		return Rule{}, fmt.Errorf("faultinject: rule %q: unknown errno %q", s, errno)
	}
	r.Errno = e
	return r, nil
}

// errnoValue accepts a name known to the running system or a number in
// 1..4095 (SECCOMP_RET_DATA is 16 bits, but the kernel treats returns
// above 4095 as success values, not errors).
func errnoValue(s string) (syscall.Errno, bool) {
	if n, err := strconv.ParseUint(s, 0, 16); err == nil {
		return syscall.Errno(n), n >= 1 && n <= 4095
	}
	for e := syscall.Errno(1); e <= 4095; e++ {
		if errnoName(e) == s {
			return e, true
		}
	}
	return 0, false
}

// Command returns a command that runs name with args under rules: it
// re-executes the running binary (whose TestMain must call [Main]) as the
// wrapper. rules are preset names or raw rules as accepted by [Parse];
// if they do not parse, the error is in the command's Err and Start
// returns it. The command's Env is the current environment plus
// [EnvRules]; append to it to pass more.
func Command(rules []string, name string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.Command(self, append([]string{"--", name}, args...)...)
	spec := strings.Join(rules, ",")
	cmd.Env = append(withoutRules(os.Environ()), EnvRules+"="+spec)
	if _, perr := Parse(spec); perr != nil {
		cmd.Err = perr
	}
	return cmd
}

// Main makes the running binary a wrapper when [EnvRules] is set; see the
// package documentation for the contract. It returns only when
// EnvRules is unset; otherwise it execs the target or exits.
func Main() {
	spec, ok := os.LookupEnv(EnvRules)
	if !ok {
		return
	}
	fail := func(code int, err error) {
		fmt.Fprintf(os.Stderr, "faultinject wrapper: %v\n", err)
		os.Exit(code)
	}
	if len(os.Args) < 3 || os.Args[1] != "--" {
		fail(125, fmt.Errorf("%s is set: want arguments \"-- target [args...]\", got %q", EnvRules, os.Args[1:]))
	}
	rules, err := Parse(spec)
	if err != nil {
		fail(125, err)
	}
	argv := os.Args[2:]
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fail(127, err)
	}
	if err := install(rules); err != nil {
		fail(125, err)
	}
	err = syscall.Exec(path, argv, withoutRules(os.Environ()))
	fail(126, fmt.Errorf("exec %s: %w", path, err))
}

// Exec installs rules on the calling process and replaces it with argv
// (argv[0] is looked up in PATH when it has no slash) and env. It returns
// only on failure, with the calling goroutine locked to its thread and,
// if the failure came after Install, the filter in place.
func Exec(rules []Rule, argv, env []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("faultinject: exec: empty argv")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("faultinject: %w", err)
	}
	if err := install(rules); err != nil {
		return err
	}
	return fmt.Errorf("faultinject: exec %s: %w", path, syscall.Exec(path, argv, env))
}

func withoutRules(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvRules+"=") {
			out = append(out, kv)
		}
	}
	return out
}
