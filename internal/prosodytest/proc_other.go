//go:build !linux

package prosodytest

import (
	"os"
	"syscall"
)

var (
	killSignal = os.Kill
	termSignal = os.Interrupt
)

// sysProcAttr has no parent-death signal outside Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
