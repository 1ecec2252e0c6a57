package qemu

import "syscall"

// sysProcAttr makes the kernel kill QEMU if the test process dies first, so
// a crashed test leaves no emulator behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
