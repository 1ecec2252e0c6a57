package serve

import (
	"net"
	"net/netip"
	"time"
)

// PacketConnBind adapts a net.PacketConn to the seam, one datagram per call (BatchSize
// 1). A *net.UDPConn takes the fast path (ReadMsgUDPAddrPort: no address conversion,
// no allocation, MSG_TRUNC detection) and, on Linux, can also be polled without
// blocking ([Poller], for busy polling); any other PacketConn goes through net.Addr.
// The hosted daemon uses net/udp's batched Bind instead; this adapter serves tests and
// any connection that has only the net.PacketConn interface.
func PacketConnBind(pc net.PacketConn) Bind {
	c := newPacketConn(pc)
	if c.udp != nil {
		c.initPoll()
		if c.pollable() {
			return pollingConn{c}
		}
	}
	return c
}

// packetConn is one net.PacketConn behind the Bind interface.
type packetConn struct {
	pc  net.PacketConn
	udp *net.UDPConn // non-nil for the fast path

	// Which peer address families the socket can reach, from its local address: an
	// IPv4 socket reaches IPv4 only, an IPv6 socket bound to a specific address IPv6
	// only, a wildcard IPv6 socket (possibly dual stack) or an unknown one both.
	reaches4, reaches6 bool

	// Reused destination for generic WriteTo, so that a write does not allocate. Only
	// the loop's goroutine writes.
	wa  net.UDPAddr
	wip [16]byte

	// Busy polling (poll_linux.go); only the loop's goroutine polls.
	pollState
}

// pollingConn is a packetConn that can poll: it adds TryReceiveBatch.
type pollingConn struct{ *packetConn }

func (c pollingConn) TryReceiveBatch(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	p := &pkts[0]
	n, from, trunc, ok, err := c.tryRead(p.Buf)
	if err != nil || !ok {
		return 0, err
	}
	p.N, p.Addr, p.Trunc = n, from, trunc
	return 1, nil
}

func newPacketConn(pc net.PacketConn) *packetConn {
	c := &packetConn{pc: pc, reaches4: true, reaches6: true}
	if u, ok := pc.(*net.UDPConn); ok {
		c.udp = u
	}
	if la, ok := pc.LocalAddr().(*net.UDPAddr); ok && la != nil {
		c.reaches4, c.reaches6 = familiesOf(la.AddrPort().Addr())
	}
	return c
}

// familiesOf says which peer families a socket bound to local reaches.
func familiesOf(local netip.Addr) (reaches4, reaches6 bool) {
	a := local.Unmap()
	switch {
	case a.Is4():
		return true, false
	case a.Is6() && !a.IsUnspecified():
		return false, true
	}
	return true, true
}

func (c *packetConn) Reaches(a netip.Addr) bool {
	if a.Unmap().Is4() {
		return c.reaches4
	}
	return c.reaches6
}

func (c *packetConn) BatchSize() int                    { return 1 }
func (c *packetConn) String() string                    { return c.pc.LocalAddr().String() }
func (c *packetConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// ReceiveBatch reads one datagram into pkts[0]. Trunc is set when the datagram did
// not fit: the kernel reported MSG_TRUNC, or it filled all of the buffer (the loop's
// buffers are one octet longer than the largest datagram it accepts). The peer
// address is unmapped (an IPv4 peer of a dual stack socket is reported as IPv4), so
// the engine sees one address per peer whatever socket it came through.
func (c *packetConn) ReceiveBatch(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	p := &pkts[0]
	var (
		n     int
		from  netip.AddrPort
		trunc bool
		err   error
	)
	if c.udp != nil {
		var flags int
		n, _, flags, from, err = c.udp.ReadMsgUDPAddrPort(p.Buf, nil)
		trunc = flags&msgTrunc != 0
	} else {
		var a net.Addr
		n, a, err = c.pc.ReadFrom(p.Buf)
		from = addrPortOf(a)
	}
	if err != nil {
		return 0, err
	}
	if n >= len(p.Buf) {
		trunc = true
	}
	p.N, p.Addr, p.Trunc = n, unmapped(from), trunc
	return 1, nil
}

// SendBatch writes each datagram with one call.
func (c *packetConn) SendBatch(pkts []Packet) (int, error) {
	for i := range pkts {
		if err := c.write(pkts[i].Buf, pkts[i].Addr); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

func (c *packetConn) write(b []byte, to netip.AddrPort) error {
	if !c.Reaches(to.Addr()) {
		return errNoFamily
	}
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

// unmapped reports an IPv4-mapped IPv6 peer as the IPv4 peer it is.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
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
