package prosodytest

import "syscall"

var (
	killSignal = syscall.SIGKILL
	termSignal = syscall.SIGTERM
)

// sysProcAttr makes the kernel kill Prosody when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
