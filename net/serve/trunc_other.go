//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package serve

// msgTrunc is 0 where the MSG_TRUNC flag is not wired up (tamago, other systems): an
// oversized datagram is then detected by filling the whole read buffer.
const msgTrunc = 0
