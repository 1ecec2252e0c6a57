package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Config chooses what a [Stack] carries beyond IPv4, IPv6, ARP, ICMP and UDP.
type Config struct {
	// TCP adds the TCP protocol: for the upstream MQTT bridge and the HTTP
	// status page through [Stack.Socket]; MQTT-SN itself needs only UDP.
	TCP bool
}

// Stack is a gVisor network stack and the interfaces attached to it.
type Stack struct {
	s   *stack.Stack
	tcp bool // Config.TCP

	mu     sync.Mutex
	nextID tcpip.NICID
	ifaces []*iface
	routes []tcpip.Route
}

// New returns a stack with no interfaces.
func New(cfg Config) *Stack {
	transports := []stack.TransportProtocolFactory{udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6}
	if cfg.TCP {
		transports = append(transports, tcp.NewProtocol)
	}
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{AutoGenLinkLocal: true}),
			arp.NewProtocol,
		},
		TransportProtocols: transports,
		HandleLocal:        true,
	})
	return &Stack{s: s, tcp: cfg.TCP, nextID: 1}
}

// Gvisor returns the underlying gVisor stack, for callers that need its
// endpoint API or its statistics.
func (s *Stack) Gvisor() *stack.Stack { return s.s }

// Close stops every interface and closes the stack.
func (s *Stack) Close() {
	s.mu.Lock()
	ifaces := s.ifaces
	s.ifaces = nil
	s.mu.Unlock()
	for _, ifc := range ifaces {
		ifc.stop()
	}
	s.s.Close()
	s.s.Wait()
}

// ListenUDP returns a [net.PacketConn] bound to port on every address of the
// stack, IPv4 and IPv6 alike (an IPv6 socket that also accepts IPv4). It is
// gVisor's gonet adapter, which allocates per datagram and, as Linux does,
// reports a datagram whose frame the NIC refused as sent (the refusal is counted
// in [InterfaceStats]); the broker's socket is [Stack.ListenBind].
func (s *Stack) ListenUDP(port uint16) (net.PacketConn, error) {
	c, err := gonet.DialUDP(s.s, &tcpip.FullAddress{Port: port}, nil, ipv6.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen UDP port %d: %w", port, err)
	}
	return c, nil
}

// ListenUDPAddr returns a [net.PacketConn] bound to one local address and port.
func (s *Stack) ListenUDPAddr(ap netip.AddrPort) (net.PacketConn, error) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		proto = ipv6.ProtocolNumber
	}
	fa := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice()), Port: ap.Port()}
	c, err := gonet.DialUDP(s.s, &fa, nil, proto)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen UDP %v: %w", ap, err)
	}
	return c, nil
}

func tcpipAddr(a netip.Addr) tcpip.Address {
	return tcpip.AddrFromSlice(a.Unmap().AsSlice())
}

func protocolOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Unmap().Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func linkAddr(mac []byte) tcpip.LinkAddress { return tcpip.LinkAddress(mac) }
