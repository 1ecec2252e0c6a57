//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package udp

import "syscall"

// control is a no-op where the socket options are not wired up: the socket gets the
// platform's defaults (Go's own dual-stack choice for a wildcard address).
func control(network string, rc syscall.RawConn, stack Stack, opts Options) error { return nil }

// noIPv6 is false where the errors are not known: no fallback is attempted.
func noIPv6(err error) bool { return false }
