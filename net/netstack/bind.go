package netstack

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/musqratt/musqratt/net/serve"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// BindBatchSize is what [UDPBind.BatchSize] reports.
	BindBatchSize = 32
	// sendWait bounds how long SendBatch waits for the endpoint's send buffer to
	// have room again (it fills only while packets wait for link resolution).
	sendWait = 5 * time.Millisecond
)

// UDPBind is a [serve.Bind] and [serve.Poller] directly on gVisor's UDP endpoint,
// without the net.PacketConn adapter: datagrams are read into and written from the
// caller's buffers through a reused writer, reader and address, so that the glue
// allocates nothing per datagram.
//
// A dual-stack Bind (an IPv6 endpoint that also carries IPv4, see [Stack.ListenBind])
// reports IPv4 peers unmapped and sends to IPv4 and IPv6 destinations alike.
// Link-local IPv6 sources are reported without their zone.
type UDPBind struct {
	ep    tcpip.Endpoint
	wq    *waiter.Queue
	name  string
	proto tcpip.NetworkProtocolNumber
	dual  bool // IPv6 endpoint with V6Only off

	readEntry, writeEntry waiter.Entry
	readable, writable    chan struct{}
	deadline              *readDeadline
	closeOnce             sync.Once
	closed                chan struct{}
	w                     packetWriter      // receive side, loop goroutine only
	r                     bytes.Reader      // send side, loop goroutine only
	to                    tcpip.FullAddress // send side, loop goroutine only
	sendTimer             *time.Timer       // send side, loop goroutine only
	recvOpts              tcpip.ReadOptions
}

var (
	_ serve.Bind   = (*UDPBind)(nil)
	_ serve.Poller = (*UDPBind)(nil)
)

// The errors SendBatch returns: static, so a dropped datagram allocates nothing.
var (
	errSendQueueFull = fmt.Errorf("netstack: UDP send: %w", serve.ErrTxQueueFull)
	errSendNIC       = fmt.Errorf("netstack: UDP send: %w", serve.ErrNIC)
	errSendNoRoute   = fmt.Errorf("netstack: UDP send: %w", serve.ErrNoRoute)
	errSendFamily    = fmt.Errorf("netstack: UDP send: address family not carried by this socket: %w", serve.ErrNoRoute)
	errRecvDeadline  = fmt.Errorf("netstack: UDP receive: %w", os.ErrDeadlineExceeded)
	errBindClosed    = fmt.Errorf("netstack: UDP: %w", net.ErrClosed)
)

// ListenBind opens a dual-stack [UDPBind] on port on every address of the stack:
// IPv6 and IPv4 peers alike (IPv4 as v4-mapped inside gVisor, unmapped in Packet.Addr).
func (s *Stack) ListenBind(port uint16) (*UDPBind, error) {
	return s.ListenBindAddr(netip.AddrPortFrom(netip.IPv6Unspecified(), port))
}

// ListenBindAddr opens a [UDPBind] on one local address and port: "[::]:p" is dual
// stack as [Stack.ListenBind]; "0.0.0.0:p" is IPv4 only on every IPv4 address; a
// specific address carries its own family only.
func (s *Stack) ListenBindAddr(ap netip.AddrPort) (*UDPBind, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return nil, fmt.Errorf("netstack: bind UDP %v: no address", ap)
	}
	proto := ipv6.ProtocolNumber
	dual := a.IsUnspecified() && a.Is6()
	fa := tcpip.FullAddress{Port: ap.Port()}
	switch {
	case a.Unmap().Is4():
		proto = ipv4.ProtocolNumber
		if !a.IsUnspecified() {
			fa.Addr = tcpip.AddrFrom4(a.Unmap().As4())
		}
	case !dual:
		fa.Addr = tcpip.AddrFrom16(a.As16())
	}
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(udp.ProtocolNumber, proto, wq)
	if terr != nil {
		return nil, fmt.Errorf("netstack: bind UDP %v: %w", ap, sysErr("socket", terr))
	}
	if proto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(!dual)
	}
	ep.SocketOptions().SetBroadcast(true)
	// As on Linux, a UDP write whose frame the link could not queue (ENOBUFS) is
	// reported only with IP_RECVERR; without it gVisor reports success.
	ep.SocketOptions().SetIPv4RecvError(true)
	ep.SocketOptions().SetIPv6RecvError(true)
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: bind UDP %v: %w", ap, sysErr("bind", terr))
	}
	b := &UDPBind{
		ep:       ep,
		wq:       wq,
		name:     ap.String(),
		proto:    proto,
		dual:     dual,
		deadline: newReadDeadline(),
		closed:   make(chan struct{}),
		recvOpts: tcpip.ReadOptions{NeedRemoteAddr: true},
	}
	if local, terr := ep.GetLocalAddress(); terr == nil {
		b.name = netip.AddrPortFrom(ap.Addr(), local.Port).String()
	}
	b.readEntry, b.readable = waiter.NewChannelEntry(waiter.ReadableEvents)
	b.writeEntry, b.writable = waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&b.readEntry)
	wq.EventRegister(&b.writeEntry)
	b.sendTimer = time.NewTimer(time.Hour)
	b.sendTimer.Stop()
	return b, nil
}

// packetWriter is the io.Writer gVisor reads a datagram into: it fills buf and
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
	for i := range pkts {
		p := &pkts[i]
		b.w.buf, b.w.n = p.Buf, 0
		res, terr := b.ep.Read(&b.w, b.recvOpts)
		b.w.buf = nil
		if terr != nil {
			switch terr.(type) {
			case *tcpip.ErrWouldBlock:
				return i, nil
			case *tcpip.ErrClosedForReceive:
				if i == 0 {
					return 0, errBindClosed
				}
				return i, nil
			}
			if i == 0 {
				return 0, fmt.Errorf("netstack: UDP receive on %s: %s", b.name, terr)
			}
			return i, nil
		}
		p.N = b.w.n
		p.Trunc = res.Total > b.w.n
		p.Addr = addrPortOf(res.RemoteAddr)
	}
	return len(pkts), nil
}

// addrPortOf converts gVisor's address, IPv4 unmapped.
func addrPortOf(fa tcpip.FullAddress) netip.AddrPort {
	var a netip.Addr
	switch fa.Addr.Len() {
	case 4:
		a = netip.AddrFrom4(fa.Addr.As4())
	case 16:
		a = netip.AddrFrom16(fa.Addr.As16()).Unmap()
	}
	return netip.AddrPortFrom(a, fa.Port)
}

// SendBatch implements [serve.Bind]. A datagram not sent is reported with an error
// wrapping one of serve's reasons:
//
//   - [serve.ErrTxQueueFull]: the NIC's transmit ring stayed full past its bound
//     ([Interface.TxWait]), or the endpoint's send buffer stayed full for 5 ms;
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
	if b.proto == ipv4.ProtocolNumber {
		b.to.Addr = tcpip.AddrFrom4(dst.Unmap().As4())
	} else {
		b.to.Addr = tcpip.AddrFrom16(dst.As16()) // an IPv4 destination v4-mapped
	}
	b.to.Port = p.Addr.Port()
	var waitUntil time.Time
	for {
		b.r.Reset(p.Buf)
		_, terr := b.ep.Write(&b.r, tcpip.WriteOptions{To: &b.to})
		switch terr.(type) {
		case nil:
			return nil
		case *tcpip.ErrWouldBlock:
			// The send buffer is full: wait (bounded) for it to drain.
			now := time.Now()
			if waitUntil.IsZero() {
				waitUntil = now.Add(sendWait)
			} else if !now.Before(waitUntil) {
				return errSendQueueFull
			}
			if !b.waitWritable(waitUntil.Sub(now)) {
				return errBindClosed
			}
			continue
		case *tcpip.ErrNoBufferSpace:
			return errSendQueueFull // the link already waited its bound
		case *tcpip.ErrAborted:
			return errSendNIC
		case *tcpip.ErrHostUnreachable, *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet, *tcpip.ErrHostDown:
			return errSendNoRoute
		case *tcpip.ErrClosedForSend:
			return errBindClosed
		case *tcpip.ErrMessageTooLong:
			// With IPV6_RECVERR gVisor also queues this on the error queue,
			// which nothing reads: drop it there.
			b.ep.SocketOptions().DequeueErr()
		}
		return fmt.Errorf("netstack: UDP send to %v: %s", p.Addr, terr)
	}
}

// waitWritable waits up to d for a writable event; false when the Bind closed.
func (b *UDPBind) waitWritable(d time.Duration) bool {
	b.sendTimer.Reset(d)
	defer b.sendTimer.Stop()
	select {
	case <-b.writable:
	case <-b.sendTimer.C:
	case <-b.closed:
		return false
	}
	return true
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
	case b.proto == ipv4.ProtocolNumber:
		return a.Unmap().Is4()
	case b.dual:
		return true
	}
	return a.Is6() && !a.Is4In6()
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

// Close closes the endpoint; a blocked ReceiveBatch returns an error wrapping
// net.ErrClosed, as every call afterwards does.
func (b *UDPBind) Close() error {
	first := false
	b.closeOnce.Do(func() {
		first = true
		close(b.closed)
		b.wq.EventUnregister(&b.readEntry)
		b.wq.EventUnregister(&b.writeEntry)
		b.deadline.stop()
		b.ep.Close()
	})
	if !first {
		return errBindClosed
	}
	return nil
}
