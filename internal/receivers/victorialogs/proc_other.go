//go:build !linux

package victorialogs

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a test binary that
// dies without its cleanups leaves the server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
