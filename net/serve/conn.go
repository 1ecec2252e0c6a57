package serve

import (
	"net"
	"net/netip"
)

// conn adapts one net.PacketConn to netip addresses. A *net.UDPConn takes the fast
// path (no address conversion, no allocation, MSG_TRUNC detection); any other
// PacketConn goes through net.Addr.
type conn struct {
	pc  net.PacketConn
	udp *net.UDPConn // non-nil for the fast path

	// Which peer address families the socket can reach, from its local address: an
	// IPv4 socket reaches IPv4 only, an IPv6 socket bound to a specific address IPv6
	// only, a wildcard IPv6 socket (possibly dual stack) or an unknown one both.
	reaches4, reaches6 bool

	// Reused destination for generic WriteTo, so that a write does not allocate. Only
	// the engine goroutine writes.
	wa  net.UDPAddr
	wip [16]byte

	// Busy polling (poll_linux.go); only the engine goroutine polls.
	pollState
}

func newConn(pc net.PacketConn) *conn {
	c := &conn{pc: pc, reaches4: true, reaches6: true}
	if u, ok := pc.(*net.UDPConn); ok {
		c.udp = u
	}
	if la, ok := pc.LocalAddr().(*net.UDPAddr); ok && la != nil {
		ap := la.AddrPort()
		a := ap.Addr().Unmap()
		switch {
		case a.Is4():
			c.reaches6 = false
		case a.Is6() && !a.IsUnspecified():
			c.reaches4 = false
		}
	}
	return c
}

// reaches reports whether this socket can send to a.
func (c *conn) reaches(a netip.Addr) bool {
	if a.Unmap().Is4() {
		return c.reaches4
	}
	return c.reaches6
}

// read reads one datagram into b. oversized is set when the datagram did not fit: the
// kernel reported MSG_TRUNC, or it filled all of b (b is one octet longer than the
// largest datagram accepted). The peer address is unmapped (an IPv4 peer of a dual
// stack socket is reported as IPv4), so the engine sees one address per peer whatever
// socket it came through.
func (c *conn) read(b []byte) (n int, from netip.AddrPort, oversized bool, err error) {
	if c.udp != nil {
		var flags int
		n, _, flags, from, err = c.udp.ReadMsgUDPAddrPort(b, nil)
		oversized = flags&msgTrunc != 0
	} else {
		var a net.Addr
		n, a, err = c.pc.ReadFrom(b)
		from = addrPortOf(a)
	}
	if err != nil {
		return 0, netip.AddrPort{}, false, err
	}
	if n >= len(b) {
		oversized = true
	}
	if from.Addr().Is4In6() {
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	}
	return n, from, oversized, nil
}

// write sends b to to.
func (c *conn) write(b []byte, to netip.AddrPort) error {
	if c.udp != nil {
		_, err := c.udp.WriteToUDPAddrPort(b, to)
		return err
	}
	a := to.Addr()
	if a.Is4() {
		v := a.As4()
		c.wa.IP = append(c.wip[:0], v[:]...)
	} else {
		v := a.As16()
		c.wa.IP = append(c.wip[:0], v[:]...)
	}
	c.wa.Port, c.wa.Zone = int(to.Port()), a.Zone()
	_, err := c.pc.WriteTo(b, &c.wa)
	return err
}

// addrPortOf converts a peer address from a generic PacketConn.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}
