package victorialogs

import "syscall"

// sysProcAttr kills VictoriaLogs when the test binary dies without running
// its cleanups (a test timeout panics), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
