//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package udp

// msgTrunc is 0 where the MSG_TRUNC flag is not wired up: an oversized datagram is
// then detected by its filling the whole buffer.
const msgTrunc = 0
