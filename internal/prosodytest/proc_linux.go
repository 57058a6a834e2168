package prosodytest

import (
	"os"
	"syscall"
)

var (
	killSignal = syscall.SIGKILL
	termSignal = syscall.SIGTERM
	// stopSignal freezes a process without closing anything; contSignal
	// wakes it.
	stopSignal os.Signal = syscall.SIGSTOP
	contSignal os.Signal = syscall.SIGCONT
)

// sysProcAttr makes the kernel kill Prosody when the test binary dies, and
// puts it in a process group of its own, so that a Ctrl-C in the terminal
// reaches only the Go program, which then stops the servers itself.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// childProcAttr makes the kernel kill a test binary that Main started when
// Main's process dies; it stays in the same process group, so that a Ctrl-C
// reaches it too.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
