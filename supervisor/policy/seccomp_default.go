package policy

// Errno values the default profile returns.
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)

// defaultDenied are the system calls the default profile answers with EPERM:
// what Docker's and Podman's default profiles refuse a container without
// extra capabilities, plus ptrace and process_vm_* (which Docker allows on
// kernels from 4.8) and io_uring (which Docker dropped in 25.0 because its
// operations bypass seccomp). Names an architecture lacks are skipped.
var defaultDenied = []string{
	// Accounting, kernel logs, keys, BPF and performance counters.
	"acct", "add_key", "bpf", "keyctl", "lookup_dcookie", "perf_event_open", "request_key", "syslog",
	// Clocks.
	"clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime",
	// Kernel modules and kexec.
	"create_module", "delete_module", "finit_module", "get_kernel_syms", "init_module",
	"kexec_file_load", "kexec_load", "query_module",
	// io_uring.
	"io_uring_enter", "io_uring_register", "io_uring_setup",
	// Raw I/O ports and vm86.
	"ioperm", "iopl", "vm86", "vm86old",
	// Other processes' memory and file descriptors.
	"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
	// Mounts, the root and file handles.
	"chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount",
	"name_to_handle_at", "open_by_handle_at", "open_tree", "pivot_root", "umount", "umount2",
	// Namespaces: joining and unsharing (clone is handled apart).
	"setns", "unshare",
	// NUMA policy and page migration.
	"get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node",
	// Host administration.
	"fanotify_init", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "nfsservctl",
	"quotactl", "quotactl_fd", "reboot", "setdomainname", "sethostname", "swapoff", "swapon",
	"_sysctl", "sysfs", "uselib", "userfaultfd", "ustat", "vhangup",
}

// cloneNewUser is CLONE_NEWUSER.
const cloneNewUser = 0x10000000

// DefaultSeccompProfile returns the built-in profile ("default"): a
// deny-list over a default-allow, so ordinary programs run unchanged.
//
//   - The system calls container runtimes refuse (mount, ptrace, bpf,
//     keyctl, kexec_load, init_module, reboot, setns, unshare, ...) fail
//     with EPERM.
//   - No new user namespace, the way out of the bounding set and of the
//     capability drop: unshare is refused outright, clone with
//     CLONE_NEWUSER in its flags (argument 0) fails with EPERM, and clone3,
//     whose flags live in memory seccomp cannot read, fails with ENOSYS so
//     that libc falls back to clone.
//   - setrlimit and prlimit64 stay allowed: Go's syscall.Exec restores
//     RLIMIT_NOFILE after the filter is in place.
//
// The rules apply to x86_64 (with x86 and x32), aarch64 (with arm) and
// riscv64, whose clone takes its flags in argument 0; other architectures
// are killed. Each call returns a new value.
func DefaultSeccompProfile() *SeccompProfile {
	eperm, enosys := uint(errnoEPERM), uint(errnoENOSYS)
	return &SeccompProfile{
		DefaultAction: ActAllow,
		ArchMap: []SeccompArch{
			{Architecture: "SCMP_ARCH_X86_64", SubArchitectures: []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
			{Architecture: "SCMP_ARCH_AARCH64", SubArchitectures: []string{"SCMP_ARCH_ARM"}},
			{Architecture: "SCMP_ARCH_RISCV64"},
		},
		Syscalls: []SeccompSyscall{
			{
				Names:    append([]string(nil), defaultDenied...),
				Action:   ActErrno,
				ErrnoRet: &eperm,
				Comment:  "what container runtimes refuse an unprivileged container",
			},
			{
				Names:    []string{"clone"},
				Action:   ActErrno,
				ErrnoRet: &eperm,
				Args:     []SeccompArg{{Index: 0, Value: cloneNewUser, ValueTwo: cloneNewUser, Op: "SCMP_CMP_MASKED_EQ"}},
				Comment:  "no new user namespace: clone with CLONE_NEWUSER",
			},
			{
				Names:    []string{"clone3"},
				Action:   ActErrno,
				ErrnoRet: &enosys,
				Comment:  "clone3 flags cannot be inspected: ENOSYS makes libc fall back to clone",
			},
		},
	}
}
