//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package udp

import "syscall"

// msgTrunc is the recvmsg flag saying a datagram was longer than the buffer (the
// Linux Bind reads msg_flags itself).
const msgTrunc = syscall.MSG_TRUNC
