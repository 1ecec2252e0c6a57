package netstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"

	"github.com/musqratt/musqratt/board"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// MTU is the IP MTU of every interface: a plain 1500-octet Ethernet.
	MTU = 1500
	// minFrame is the shortest Ethernet frame without its check sequence.
	minFrame = 60
	// maxFrame is the longest untagged Ethernet frame without its check sequence.
	maxFrame = header.EthernetMinimumSize + MTU
	// queueLen is how many outbound packets the channel endpoint holds.
	queueLen = 256
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
}

// iface is one attached NIC and the goroutines that move its frames.
type iface struct {
	id     tcpip.NICID
	nic    board.NIC
	ch     *channel.Endpoint
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	txErr  error
	txErrs uint64
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
	ch := channel.New(queueLen, maxFrame, tcpip.LinkAddress(mac))

	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.mu.Unlock()

	if err := s.s.CreateNIC(id, ethernet.New(ch)); err != nil {
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
	f := &iface{id: id, nic: ifc.NIC, ch: ch, cancel: cancel}

	s.mu.Lock()
	s.routes = append(s.routes, routes...)
	s.s.SetRouteTable(sortRoutes(s.routes))
	s.ifaces = append(s.ifaces, f)
	s.mu.Unlock()

	f.wg.Add(2)
	go f.transmitLoop(ctx)
	go f.receiveLoop(ctx, ifc.Idle)

	for _, p := range ifc.Addrs {
		if p.Addr().Is4() {
			if err := ifc.NIC.Transmit(GratuitousARP(mac, p.Addr())); err != nil {
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
	f.ch.Close()
	f.wg.Wait()
}

// transmitLoop takes packets the stack queued on the channel endpoint (their
// Ethernet header already pushed by the ethernet endpoint), flattens each
// into one frame, pads it to the Ethernet minimum and hands it to the NIC.
func (f *iface) transmitLoop(ctx context.Context) {
	defer f.wg.Done()
	frame := make([]byte, 0, maxFrame)
	for {
		pkt := f.ch.ReadContext(ctx)
		if pkt == nil {
			return
		}
		frame = frame[:0]
		for _, v := range pkt.AsSlices() {
			frame = append(frame, v...)
		}
		pkt.DecRef()
		for len(frame) < minFrame {
			frame = append(frame, 0)
		}
		if err := f.nic.Transmit(frame); err != nil {
			f.errMu.Lock()
			f.txErr = err
			f.txErrs++
			f.errMu.Unlock()
		}
	}
}

// receiveLoop takes frames from the NIC and injects them whole; the
// ethernet endpoint parses the header.
func (f *iface) receiveLoop(ctx context.Context, idle func()) {
	defer f.wg.Done()
	var notify <-chan struct{}
	if n, ok := f.nic.(board.Notifier); ok {
		notify = n.Notify()
	}
	if idle == nil {
		idle = runtime.Gosched
	}
	buf := make([]byte, maxFrame+64)
	for {
		n, ok := f.nic.Receive(buf)
		if ok {
			if n >= header.EthernetMinimumSize {
				pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
					Payload: buffer.MakeWithData(buf[:n]),
				})
				f.ch.InjectInbound(0, pkt)
				pkt.DecRef()
			}
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
