package netstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/musqratt/musqratt/board"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// MTU is the IP MTU of every interface: a plain 1500-octet Ethernet.
	MTU = 1500
	// minFrame is the shortest Ethernet frame without its check sequence.
	minFrame = 60
	// maxFrame is the longest untagged Ethernet frame without its check sequence.
	maxFrame = header.EthernetMinimumSize + MTU
	// rxBufSize is the receive buffer offered to the NIC: a whole pooled chunk of
	// gVisor's (2 KiB), room for a tagged frame too.
	rxBufSize = 2048
)

// Interface describes a NIC to attach to a [Stack] and the addresses it
// carries.
type Interface struct {
	NIC      board.NIC
	Addrs    []netip.Prefix // each address and its on-link subnet
	Gateway4 netip.Addr     // optional IPv4 default router
	Gateway6 netip.Addr     // optional IPv6 default router

	// Idle is called by the receive loop of a NIC that is not a
	// [board.Notifier] when no frame is waiting. Nil means
	// runtime.Gosched: lowest latency, and a busy core.
	Idle func()

	// TxWait bounds how long an outbound frame waits while the NIC's Transmit
	// answers [board.ErrTxFull]; zero means [DefaultTxWait].
	TxWait time.Duration
}

// iface is one attached NIC, its link endpoint and the goroutine that receives
// its frames (frames are transmitted by whichever goroutine writes a packet).
type iface struct {
	id     tcpip.NICID
	nic    board.NIC
	ep     *linkEndpoint
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// AddInterface attaches ifc.NIC to the stack, assigns its addresses, adds a
// route to each on-link subnet and the default routes, starts moving frames
// until ctx ends or the stack closes, and announces each IPv4 address with a
// gratuitous ARP.
func (s *Stack) AddInterface(ctx context.Context, ifc Interface) error {
	if ifc.NIC == nil {
		return errors.New("netstack: AddInterface: nil NIC")
	}
	mac := ifc.NIC.MAC()
	if len(mac) != 6 {
		return fmt.Errorf("netstack: NIC MAC %v: %d octets, want 6", mac, len(mac))
	}
	ep := newLinkEndpoint(ifc.NIC, ifc.TxWait)

	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.mu.Unlock()

	if err := s.s.CreateNICWithOptions(id, ep, stack.NICOptions{QDisc: ep}); err != nil {
		return fmt.Errorf("netstack: create NIC %d (%v): %s", id, mac, err)
	}
	var routes []tcpip.Route
	for _, p := range ifc.Addrs {
		pa := tcpip.ProtocolAddress{
			Protocol: protocolOf(p.Addr()),
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpipAddr(p.Addr()),
				PrefixLen: p.Bits(),
			},
		}
		if err := s.s.AddProtocolAddress(id, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("netstack: address %v on NIC %d: %s", p, id, err)
		}
		routes = append(routes, tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: id})
	}
	if ifc.Gateway4.IsValid() {
		routes = append(routes, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpipAddr(ifc.Gateway4), NIC: id})
	}
	if ifc.Gateway6.IsValid() {
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, Gateway: tcpipAddr(ifc.Gateway6), NIC: id})
	}
	// Link-local IPv6 is always on link.
	routes = append(routes, tcpip.Route{Destination: header.IPv6LinkLocalPrefix.Subnet(), NIC: id})

	ctx, cancel := context.WithCancel(ctx)
	f := &iface{id: id, nic: ifc.NIC, ep: ep, cancel: cancel}

	s.mu.Lock()
	s.routes = append(s.routes, routes...)
	s.s.SetRouteTable(sortRoutes(s.routes))
	s.ifaces = append(s.ifaces, f)
	s.mu.Unlock()

	f.wg.Add(1)
	go f.receiveLoop(ctx, ifc.Idle)

	for _, p := range ifc.Addrs {
		if p.Addr().Is4() {
			if err := ep.transmitRaw(GratuitousARP(mac, p.Addr())); err != nil {
				return fmt.Errorf("netstack: gratuitous ARP for %v: %w", p.Addr(), err)
			}
		}
	}
	return nil
}

// sortRoutes orders routes most specific first, default routes last, as
// gVisor takes the first match.
func sortRoutes(rs []tcpip.Route) []tcpip.Route {
	out := append([]tcpip.Route(nil), rs...)
	// insertion sort: a handful of routes
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Destination.Prefix() > out[j-1].Destination.Prefix(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (f *iface) stop() {
	f.cancel()
	f.ep.Close()
	f.wg.Wait()
}

// InterfaceStats returns the counters of each interface, in the order they were
// added.
func (s *Stack) InterfaceStats() []InterfaceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InterfaceStats, len(s.ifaces))
	for i, f := range s.ifaces {
		out[i] = f.ep.stats()
	}
	return out
}

// receiveLoop takes frames from the NIC and injects them whole; the link endpoint
// parses the Ethernet header. The NIC copies each frame straight into a view of
// gVisor's pooled memory, which becomes the packet's payload, so a received frame
// is copied once and allocates nothing here.
func (f *iface) receiveLoop(ctx context.Context, idle func()) {
	defer f.wg.Done()
	var notify <-chan struct{}
	if n, ok := f.nic.(board.Notifier); ok {
		notify = n.Notify()
	}
	if idle == nil {
		idle = runtime.Gosched
	}
	var v *buffer.View
	defer func() {
		if v != nil {
			v.Release()
		}
	}()
	for {
		if v == nil {
			v = buffer.NewViewSize(rxBufSize)
		}
		n, ok := f.nic.Receive(v.AsSlice())
		if ok {
			if n < header.EthernetMinimumSize || n > rxBufSize {
				f.ep.rxDropped.Add(1)
				continue // v is reused
			}
			v.CapLength(n)
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
			v = nil // owned by pkt now
			f.ep.deliver(pkt)
			pkt.DecRef()
			continue
		}
		if notify != nil {
			select {
			case <-ctx.Done():
				return
			case <-notify:
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		idle()
	}
}
