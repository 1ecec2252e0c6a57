//go:build linux

package serve

import (
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// pollState is what busy polling keeps per connection: the raw socket, the one read
// callback, and what it read.
type pollState struct {
	raw       syscall.RawConn
	pollFn    func(fd uintptr) bool
	pollBuf   []byte
	pollN     int
	pollErrno syscall.Errno
	rsa       syscall.RawSockaddrAny
	rsaLen    uint32
}

// pollable reports whether tryRead works on c: a *net.UDPConn on Linux.
func (c *packetConn) pollable() bool { return c.udp != nil && c.raw != nil }

// initPoll prepares c for tryRead: the raw socket and one read callback, made once so
// that a poll allocates nothing.
func (c *packetConn) initPoll() {
	if c.udp == nil {
		return
	}
	raw, err := c.udp.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.pollFn = func(fd uintptr) bool {
		c.rsaLen = syscall.SizeofSockaddrAny
		r, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(c.pollBuf))), uintptr(len(c.pollBuf)),
			syscall.MSG_DONTWAIT|syscall.MSG_TRUNC,
			uintptr(unsafe.Pointer(&c.rsa)), uintptr(unsafe.Pointer(&c.rsaLen)))
		c.pollN, c.pollErrno = int(r), errno
		return true // never wait for readiness: this is a poll
	}
}

// tryRead reads one datagram into b if one is waiting, without blocking. ok is false
// when none is; err is set when the socket failed (or its read deadline passed, which
// is how Run's cancellation and Wake interrupt reads): the caller then takes the
// blocking path, which reports or handles it.
func (c *packetConn) tryRead(b []byte) (n int, from netip.AddrPort, oversized, ok bool, err error) {
	c.pollBuf = b
	err = c.raw.Read(c.pollFn)
	c.pollBuf = nil
	if err != nil {
		return 0, netip.AddrPort{}, false, false, err
	}
	switch c.pollErrno {
	case 0:
	case syscall.EAGAIN, syscall.EINTR:
		return 0, netip.AddrPort{}, false, false, nil
	default:
		return 0, netip.AddrPort{}, false, false, c.pollErrno
	}
	n = c.pollN
	if n >= len(b) { // MSG_TRUNC: the datagram's real length
		n, oversized = len(b), true
	}
	return n, c.pollFrom(), oversized, true, nil
}

// pollFrom decodes the sender's address from the raw sockaddr, unmapped like read's.
func (c *packetConn) pollFrom() netip.AddrPort {
	switch c.rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&c.rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), networkPort(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&c.rsa))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, networkPort(sa.Port))
	}
	return netip.AddrPort{}
}

// networkPort converts a sockaddr port, stored in network byte order.
func networkPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
