//go:build !linux

package prosodytest

import (
	"os"
	"syscall"
)

var (
	killSignal = os.Kill
	termSignal = os.Interrupt
	// No portable way to freeze a process: Freeze reports it.
	stopSignal os.Signal
	contSignal os.Signal
)

// sysProcAttr has no parent-death signal outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// childProcAttr has no parent-death signal outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }
