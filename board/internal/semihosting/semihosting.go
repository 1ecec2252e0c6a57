//go:build tamago && arm

// Package semihosting stops an arm machine under an emulator that traps
// semihosting calls (QEMU with -semihosting), handing the host an exit
// status. On real hardware a semihosting call is an undefined supervisor
// call: only call Exit when the board knows it runs emulated.
package semihosting

// Semihosting operations and reasons (Arm "Semihosting for AArch32 and
// AArch64", SYS_EXIT_EXTENDED and ADP_Stopped_ApplicationExit).
const (
	sysExitExtended = 0x20
	applicationExit = 0x20026
)

// block is the SYS_EXIT_EXTENDED parameter block: reason, then status. It
// is static so no allocation happens on the way out (Exit may run during a
// panic).
var block [2]uint32

// call issues a semihosting call (svc 0x123456 in A32 state).
func call(op uint32, arg *[2]uint32)

// Exit ends the emulation with status code (0 is success).
func Exit(code int) {
	block[0] = applicationExit
	block[1] = uint32(code)
	call(sysExitExtended, &block)
	for {
	}
}
