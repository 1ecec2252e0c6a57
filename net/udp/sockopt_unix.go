//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package udp

import (
	"errors"
	"fmt"
	"syscall"
)

// control sets the socket options before bind: SO_BROADCAST always (ADVERTISE), and
// IPV6_V6ONLY on an IPv6 socket as its Stack says.
func control(network string, rc syscall.RawConn, stack Stack, opts Options) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(sockFD(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); serr != nil {
			serr = fmt.Errorf("SO_BROADCAST: %w", serr)
			return
		}
		if network == "udp6" {
			v6only := 1
			if stack == DualStack {
				v6only = 0
			}
			if serr = syscall.SetsockoptInt(sockFD(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v6only); serr != nil {
				serr = fmt.Errorf("IPV6_V6ONLY=%d: %w", v6only, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func sockFD(fd uintptr) int { return int(fd) }

// noIPv6 reports whether err says the host cannot open an IPv6 socket.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}
