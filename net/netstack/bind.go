package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/musqratt/musqratt/net/serve"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/ports"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const (
	// BindBatchSize is what [UDPBind.BatchSize] reports.
	BindBatchSize = 32
	// bindQueueLen and bindQueueBytes bound the datagrams received and not yet read
	// (as SO_RCVBUF does a socket's): past either, a datagram is dropped and counted
	// in [BindStats.RxQueueFull]. A queued datagram holds its packet buffer, so the
	// octets counted are the frame's, headers included.
	bindQueueLen   = 4096
	bindQueueBytes = 1 << 20
	// maxRoutes bounds the route cache; past it every cached route is released.
	maxRoutes = 1024
)

// UDPBind is a [serve.Bind] and [serve.Poller] for the broker's port, directly on
// gVisor's stack without a socket: it registers a transport endpoint of its own with
// the stack's demultiplexer (gVisor's IP layer validates, reassembles and
// demultiplexes as for any endpoint), keeps each received packet buffer in a bounded
// ring until the loop copies it into its own buffer, and sends by building the UDP
// header itself and writing through a route cached per peer. gVisor's UDP endpoint
// (and the gonet adapter on it) allocates several objects per datagram — a route per
// unconnected write, the interface boxing of the IP header and a record per
// received datagram — so this path exists to allocate nothing per datagram.
//
// A dual-stack Bind (see [Stack.ListenBind]) takes IPv4 and IPv6 on one port.
// Link-local IPv6 sources are reported without their zone.
type UDPBind struct {
	s     *stack.Stack
	name  string
	port  uint16
	local tcpip.Address // bound local address; zero: every address
	v4    bool          // carries IPv4
	v6    bool          // carries IPv6
	nets  []tcpip.NetworkProtocolNumber
	id    stack.TransportEndpointID
	flags ports.Flags

	// Receive side: filled by HandlePacket (the NIC's goroutine), drained by the loop.
	mu       sync.Mutex
	ring     [bindQueueLen]received
	head, n  int
	bytes    int // octets held by the queued packet buffers
	closedRx bool
	stats    BindStats
	readable chan struct{} // capacity 1: a datagram may be waiting
	deadline *readDeadline

	closeOnce sync.Once
	closed    chan struct{}

	// Send side: the loop's goroutine only.
	routes map[routeKey]*stack.Route
	fields header.UDPFields
	w      packetWriter
}

// received is one datagram waiting in the ring: its packet buffer (a reference held)
// and where it came from.
type received struct {
	pkt  *stack.PacketBuffer
	from netip.AddrPort
	held int // octets counted against bindQueueBytes
}

type routeKey struct {
	remote, local tcpip.Address
}

// BindStats counts what a [UDPBind] did with datagrams beyond what it handed over.
type BindStats struct {
	Received    uint64 // datagrams queued for the loop
	RxQueueFull uint64 // datagrams dropped because the ring was full
	Malformed   uint64 // datagrams dropped: bad UDP length or checksum
	Sent        uint64 // datagrams written through the stack
}

var (
	_ serve.Bind              = (*UDPBind)(nil)
	_ serve.Poller            = (*UDPBind)(nil)
	_ stack.TransportEndpoint = (*UDPBind)(nil)
)

// The errors SendBatch returns: static, so a dropped datagram allocates nothing.
var (
	errSendQueueFull = fmt.Errorf("netstack: UDP send: %w", serve.ErrTxQueueFull)
	errSendNIC       = fmt.Errorf("netstack: UDP send: %w", serve.ErrNIC)
	errSendNoRoute   = fmt.Errorf("netstack: UDP send: %w", serve.ErrNoRoute)
	errSendFamily    = fmt.Errorf("netstack: UDP send: address family not carried by this socket: %w", serve.ErrNoRoute)
	errSendTooLong   = fmt.Errorf("netstack: UDP send: datagram longer than %d octets", 0xffff-header.UDPMinimumSize)
	errRecvDeadline  = fmt.Errorf("netstack: UDP receive: %w", os.ErrDeadlineExceeded)
	errBindClosed    = fmt.Errorf("netstack: UDP: %w", net.ErrClosed)
)

// ListenBind opens a dual-stack [UDPBind] on port on every address of the stack:
// IPv6 and IPv4 peers alike.
func (s *Stack) ListenBind(port uint16) (*UDPBind, error) {
	return s.ListenBindAddr(netip.AddrPortFrom(netip.IPv6Unspecified(), port))
}

// ListenBindAddr opens a [UDPBind] on one local address and port: "[::]:p" is dual
// stack as [Stack.ListenBind]; "0.0.0.0:p" is IPv4 only on every IPv4 address; a
// specific address carries its own family only. Port 0 picks a free port.
func (s *Stack) ListenBindAddr(ap netip.AddrPort) (*UDPBind, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return nil, fmt.Errorf("netstack: bind UDP %v: no address", ap)
	}
	b := &UDPBind{
		s:        s.s,
		readable: make(chan struct{}, 1),
		deadline: newReadDeadline(),
		closed:   make(chan struct{}),
		routes:   make(map[routeKey]*stack.Route),
	}
	switch {
	case a.Unmap().Is4():
		b.v4, b.nets = true, []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber}
		if !a.IsUnspecified() {
			b.local = tcpip.AddrFrom4(a.Unmap().As4())
		}
	case a.IsUnspecified():
		b.v4, b.v6 = true, true
		b.nets = []tcpip.NetworkProtocolNumber{ipv6.ProtocolNumber, ipv4.ProtocolNumber}
	default:
		b.v6, b.nets = true, []tcpip.NetworkProtocolNumber{ipv6.ProtocolNumber}
		b.local = tcpip.AddrFrom16(a.As16())
	}
	res := ports.Reservation{Networks: b.nets, Transport: udp.ProtocolNumber, Addr: b.local, Port: ap.Port(), Flags: b.flags}
	port, terr := s.s.ReservePort(s.s.SecureRNG(), res, nil)
	if terr != nil {
		return nil, fmt.Errorf("netstack: bind UDP %v: %w", ap, sysErr("bind", terr))
	}
	b.port = port
	b.id = stack.TransportEndpointID{LocalPort: port, LocalAddress: b.local}
	if terr := s.s.RegisterTransportEndpoint(b.nets, udp.ProtocolNumber, b.id, b, b.flags, 0); terr != nil {
		res.Port = port
		s.s.ReleasePort(res)
		return nil, fmt.Errorf("netstack: bind UDP %v: %w", ap, sysErr("bind", terr))
	}
	b.name = netip.AddrPortFrom(a, port).String()
	return b, nil
}

// HandlePacket implements [stack.TransportEndpoint]: the stack hands over a UDP
// packet for this port (its transport header parsed, the data trimmed to the UDP
// length). It runs on the goroutine that injected the frame (the NIC's receive loop).
func (b *UDPBind) HandlePacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) {
	hdr := header.UDP(pkt.TransportHeader().Slice())
	size := pkt.Data().Size()
	if len(hdr) < header.UDPMinimumSize || int(hdr.Length()) < header.UDPMinimumSize || int(hdr.Length()) > size+header.UDPMinimumSize {
		b.count(func(s *BindStats) { s.Malformed++ })
		return
	}
	// A zero checksum means none over IPv4; over IPv6 it is invalid (RFC 8200 8.1).
	v6 := pkt.NetworkProtocolNumber == ipv6.ProtocolNumber
	if !pkt.RXChecksumValidated && (v6 || hdr.Checksum() != 0) &&
		!hdr.IsChecksumValid(id.RemoteAddress, id.LocalAddress, pkt.Data().Checksum()) {
		b.count(func(s *BindStats) { s.Malformed++ })
		return
	}
	var from netip.Addr
	if id.RemoteAddress.Len() == 4 {
		from = netip.AddrFrom4(id.RemoteAddress.As4())
	} else {
		from = netip.AddrFrom16(id.RemoteAddress.As16()).Unmap()
	}
	held := pkt.Size()
	b.mu.Lock()
	if b.closedRx || b.n == len(b.ring) || b.bytes+held > bindQueueBytes {
		if !b.closedRx {
			b.stats.RxQueueFull++
		}
		b.mu.Unlock()
		return
	}
	pkt.IncRef()
	b.ring[(b.head+b.n)%len(b.ring)] = received{pkt: pkt, from: netip.AddrPortFrom(from, hdr.SourcePort()), held: held}
	b.n++
	b.bytes += held
	b.stats.Received++
	b.mu.Unlock()
	select {
	case b.readable <- struct{}{}:
	default:
	}
}

// count updates the stats under the lock.
func (b *UDPBind) count(f func(*BindStats)) {
	b.mu.Lock()
	f(&b.stats)
	b.mu.Unlock()
}

// HandleError implements [stack.TransportEndpoint]: ICMP errors for datagrams sent
// are not reported to the loop (UDP gives no promise; the engine retransmits).
func (*UDPBind) HandleError(stack.TransportError, *stack.PacketBuffer) {}

// Abort implements [stack.TransportEndpoint].
func (b *UDPBind) Abort() { b.Close() }

// Wait implements [stack.TransportEndpoint]: the Bind owns no goroutine.
func (*UDPBind) Wait() {}

// Stats returns the Bind's counters.
func (b *UDPBind) Stats() BindStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// packetWriter is the io.Writer a packet's data is copied into: it fills buf and
// quietly discards what does not fit (n then falls short of the datagram's size).
type packetWriter struct {
	buf []byte
	n   int
}

func (w *packetWriter) Write(p []byte) (int, error) {
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

// ReceiveBatch implements [serve.Bind].
func (b *UDPBind) ReceiveBatch(pkts []serve.Packet) (int, error) {
	for {
		n, err := b.TryReceiveBatch(pkts)
		if n > 0 || err != nil || len(pkts) == 0 {
			return n, err
		}
		if b.deadline.expired.Load() {
			return 0, errRecvDeadline
		}
		select {
		case <-b.readable:
		case <-b.deadline.c:
		case <-b.closed:
		}
	}
}

// TryReceiveBatch implements [serve.Poller]: it fills pkts with the datagrams
// waiting now, and returns 0 and nil when none is.
func (b *UDPBind) TryReceiveBatch(pkts []serve.Packet) (int, error) {
	select {
	case <-b.closed:
		return 0, errBindClosed
	default:
	}
	n := 0
	for n < len(pkts) {
		b.mu.Lock()
		if b.n == 0 {
			b.mu.Unlock()
			break
		}
		r := b.ring[b.head]
		b.ring[b.head] = received{}
		b.head = (b.head + 1) % len(b.ring)
		b.n--
		b.bytes -= r.held
		b.mu.Unlock()
		p := &pkts[n]
		b.w.buf, b.w.n = p.Buf, 0
		size := r.pkt.Data().Size()
		r.pkt.Data().ReadTo(&b.w, true)
		b.w.buf = nil
		r.pkt.DecRef()
		p.N, p.Trunc, p.Addr = b.w.n, size > b.w.n, r.from
		n++
	}
	return n, nil
}

// SendBatch implements [serve.Bind]. A datagram not sent is reported with an error
// wrapping one of serve's reasons:
//
//   - [serve.ErrTxQueueFull]: the NIC's transmit ring stayed full past its bound
//     ([Interface.TxWait]);
//   - [serve.ErrNIC]: the NIC refused the frame (counted in [InterfaceStats]);
//   - [serve.ErrNoRoute]: no route, an unreachable host or network, or a
//     destination of a family this Bind does not carry.
//
// Other failures (a datagram too long, a closed Bind) have errors of their own.
func (b *UDPBind) SendBatch(pkts []serve.Packet) (int, error) {
	select {
	case <-b.closed:
		return 0, errBindClosed
	default:
	}
	for i := range pkts {
		if err := b.send(&pkts[i]); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

func (b *UDPBind) send(p *serve.Packet) error {
	dst := p.Addr.Addr()
	if !b.Reaches(dst) {
		return errSendFamily
	}
	if len(p.Buf) > 0xffff-header.UDPMinimumSize {
		return errSendTooLong
	}
	r, err := b.route(dst)
	if err != nil {
		return err
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.UDPMinimumSize + int(r.MaxHeaderLength()),
		Payload:            buffer.MakeWithData(p.Buf),
	})
	defer pkt.DecRef()
	hdr := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
	pkt.TransportProtocolNumber = udp.ProtocolNumber
	length := uint16(pkt.Size())
	b.fields = header.UDPFields{SrcPort: b.port, DstPort: p.Addr.Port(), Length: length}
	hdr.Encode(&b.fields)
	if r.RequiresTXTransportChecksum() {
		xsum := r.PseudoHeaderChecksum(udp.ProtocolNumber, length)
		xsum = checksum.Combine(xsum, pkt.Data().Checksum())
		c := ^hdr.CalculateChecksum(xsum)
		if c == 0 {
			c = 0xffff // zero means "no checksum" (IPv4) or is invalid (IPv6)
		}
		hdr.SetChecksum(c)
	}
	// Don't Fragment when the datagram fits the route's MTU, as Linux does for UDP
	// (IP_PMTUDISC_WANT): an atomic datagram needs no IPv4 identification (RFC 6864),
	// and drawing one from gVisor's random source allocates.
	df := int(length) <= int(r.MTU())
	terr := r.WritePacket(stack.NetworkHeaderParams{Protocol: udp.ProtocolNumber, TTL: r.DefaultTTL(), DF: df}, pkt)
	switch terr.(type) {
	case nil:
		b.count(func(s *BindStats) { s.Sent++ })
		return nil
	case *tcpip.ErrNoBufferSpace, *tcpip.ErrWouldBlock:
		return errSendQueueFull // the link already waited its bound
	case *tcpip.ErrAborted:
		return errSendNIC
	case *tcpip.ErrHostUnreachable, *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet, *tcpip.ErrHostDown, *tcpip.ErrInvalidEndpointState:
		b.dropRoute(dst)
		return errSendNoRoute
	}
	return fmt.Errorf("netstack: UDP send to %v: %s", p.Addr, terr)
}

// route returns the cached route to dst (from the local address its peer last wrote
// to, for a Bind on every address), finding it on first use.
func (b *UDPBind) route(dst netip.Addr) (*stack.Route, error) {
	var remote tcpip.Address
	proto := ipv6.ProtocolNumber
	if d := dst.Unmap(); d.Is4() {
		remote, proto = tcpip.AddrFrom4(d.As4()), ipv4.ProtocolNumber
	} else {
		remote = tcpip.AddrFrom16(dst.As16())
	}
	key := routeKey{remote: remote, local: b.local}
	if r, ok := b.routes[key]; ok {
		return r, nil
	}
	r, terr := b.s.FindRoute(0, b.local, remote, proto, false)
	if terr != nil {
		return nil, errSendNoRoute
	}
	if len(b.routes) >= maxRoutes {
		b.releaseRoutes()
	}
	b.routes[key] = r
	return r, nil
}

// dropRoute forgets a route that failed, so the next send looks it up again.
func (b *UDPBind) dropRoute(dst netip.Addr) {
	for k, r := range b.routes {
		if k.remote == tcpipAddr(dst) {
			r.Release()
			delete(b.routes, k)
		}
	}
}

func (b *UDPBind) releaseRoutes() {
	for k, r := range b.routes {
		r.Release()
		delete(b.routes, k)
	}
}

// SetReadDeadline implements [serve.Bind]; it may be called from any goroutine.
func (b *UDPBind) SetReadDeadline(t time.Time) error {
	select {
	case <-b.closed:
		return errBindClosed
	default:
	}
	b.deadline.set(t)
	return nil
}

// Reaches implements [serve.Bind].
func (b *UDPBind) Reaches(a netip.Addr) bool {
	switch {
	case !a.IsValid():
		return false
	case a.Unmap().Is4():
		return b.v4
	}
	return b.v6
}

// BatchSize implements [serve.Bind].
func (*UDPBind) BatchSize() int { return BindBatchSize }

// String implements [serve.Bind]: the local address, as "[::]:1883".
func (b *UDPBind) String() string { return b.name }

// LocalAddr returns the bound local address and port.
func (b *UDPBind) LocalAddr() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(b.name)
	return ap
}

// Close unregisters the endpoint and releases the port; a blocked ReceiveBatch
// returns an error wrapping net.ErrClosed, as every call afterwards does. Routes are
// released by the next SendBatch's goroutine only if it runs; Close releases them
// when no send is under way (the loop has returned).
func (b *UDPBind) Close() error {
	first := false
	b.closeOnce.Do(func() {
		first = true
		close(b.closed)
		b.s.UnregisterTransportEndpoint(b.nets, udp.ProtocolNumber, b.id, b, b.flags, 0)
		b.s.ReleasePort(ports.Reservation{Networks: b.nets, Transport: udp.ProtocolNumber, Addr: b.local, Port: b.port, Flags: b.flags})
		b.deadline.stop()
		b.mu.Lock()
		b.closedRx = true
		b.bytes = 0
		for b.n > 0 {
			b.ring[b.head].pkt.DecRef()
			b.ring[b.head] = received{}
			b.head = (b.head + 1) % len(b.ring)
			b.n--
		}
		b.mu.Unlock()
	})
	if !first {
		return errBindClosed
	}
	b.releaseRoutes()
	return nil
}
