//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package serve

import "syscall"

// msgTrunc is the recvmsg flag saying the datagram was longer than the buffer.
const msgTrunc = syscall.MSG_TRUNC
