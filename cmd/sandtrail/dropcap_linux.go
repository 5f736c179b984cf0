package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// withoutSetpcap is the hidden command the demo uses to start a run's
// supervisor the way rootless Podman does: without CAP_SETPCAP. It drops
// the capability from this thread's bounding set and every capability
// set, then execs the rest of its arguments from the same thread, so the
// new program starts without it (for root, execve gives the permitted set
// of the bounding set). As a user without CAP_SETPCAP it only execs.
const withoutSetpcap = "__sandtrail-without-setpcap"

func execWithoutSetpcap(args []string) {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "sandtrail: "+withoutSetpcap+": nothing to run")
		os.Exit(125)
	}
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SETPCAP, 0, 0, 0); err != nil && err != unix.EPERM {
		fmt.Fprintf(os.Stderr, "sandtrail: drop CAP_SETPCAP from the bounding set: %v\n", err)
		os.Exit(125)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		mask := ^uint32(1 << unix.CAP_SETPCAP)
		data[0].Effective &= mask
		data[0].Permitted &= mask
		data[0].Inheritable &= mask
		_ = unix.Capset(&hdr, &data[0])
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	err = syscall.Exec(exe, append([]string{"sandtrail"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "sandtrail: exec: %v\n", err)
	os.Exit(126)
}
