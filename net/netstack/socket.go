package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is the accept queue of a listener, as gonet.ListenTCP uses (and
// Linux's default somaxconn).
const listenBacklog = 4096

// Socket opens a socket on the stack for the standard library's net package. It has
// the signature of tamago-go's net.SocketFunc, so on GOOS=tamago
//
//	net.SocketFunc = st.Socket
//
// routes net.Dial, net.Listen and net.ListenPacket, and everything built on them
// (crypto/tls, net/http, MQTT clients), to this stack. The net package calls it with
// the network ("tcp", "udp6", ...), the address family and socket type it chose
// (syscall.AF_INET or AF_INET6; SOCK_STREAM or SOCK_DGRAM) and the local and remote
// addresses (*net.TCPAddr or *net.UDPAddr, nil when absent). It returns gVisor's
// net adapters:
//
//   - SOCK_STREAM with a remote address: a connected *gonet.TCPConn (a net.Conn),
//     bound first to the local address if one is given, dialled within ctx;
//   - SOCK_STREAM with only a local address: a *gonet.TCPListener (a net.Listener);
//   - SOCK_DGRAM: a *gonet.UDPConn (a net.PacketConn, and a net.Conn when
//     connected), bound to the local address and connected to the remote one when
//     they are given, with broadcast allowed (as Go sets SO_BROADCAST on Linux).
//
// AF_INET is an IPv4 socket. AF_INET6 is an IPv6 socket that also carries IPv4 as
// v4-mapped addresses, unless the network ends in "6" (then IPv6 only, as
// IPV6_V6ONLY). AF_UNSPEC (0) picks by the network's suffix, then by the addresses:
// any IPv6 address makes it IPv6, else any IPv4 address IPv4, else (wildcards
// only) dual-stack IPv6. A wildcard or absent local address binds every address
// of the stack; port 0 an ephemeral port. Listeners reuse addresses (as Go sets
// SO_REUSEADDR).
//
// TCP needs a stack built with [Config.TCP]; without it, and for any other family,
// socket type or network (unix, raw IP), the error wraps syscall.EPROTONOSUPPORT,
// EAFNOSUPPORT or ESOCKTNOSUPPORT. gVisor's errors from bind and connect are
// reported as the errno Linux would give (ECONNREFUSED, EADDRINUSE, ENETUNREACH,
// ...) wrapped in an *os.SyscallError, so net's errors read as they do on Linux.
// A dial cut short by ctx reports a timeout (net.Error.Timeout) on a deadline.
//
// Zones of link-local IPv6 addresses are not mapped to interfaces: with more than
// one interface, link-local peers need a route.
func (s *Stack) Socket(ctx context.Context, network string, family, sotype int, laddr, raddr net.Addr) (interface{}, error) {
	switch {
	case network == "",
		strings.HasPrefix(network, "tcp") && sotype == syscall.SOCK_STREAM,
		strings.HasPrefix(network, "udp") && sotype == syscall.SOCK_DGRAM:
	default:
		return nil, fmt.Errorf("netstack: network %q (socket type %d): %w", network, sotype, syscall.EPROTONOSUPPORT)
	}
	lip, lport, lok, err := addrOf(laddr)
	if err != nil {
		return nil, err
	}
	rip, rport, rok, err := addrOf(raddr)
	if err != nil {
		return nil, err
	}
	proto, v6only, err := chooseProto(network, family, lip, rip)
	if err != nil {
		return nil, err
	}
	var la, ra *tcpip.FullAddress
	if lok {
		fa, err := fullAddr(lip, lport, proto)
		if err != nil {
			return nil, err
		}
		la = &fa
	}
	if rok {
		fa, err := fullAddr(rip, rport, proto)
		if err != nil {
			return nil, err
		}
		ra = &fa
	}

	switch sotype {
	case syscall.SOCK_STREAM:
		if !s.tcp {
			return nil, fmt.Errorf("netstack: TCP is not enabled on this stack (netstack.Config.TCP): %w", syscall.EPROTONOSUPPORT)
		}
		// Each case returns a nil interface on error, not a typed nil.
		switch {
		case ra != nil:
			c, err := s.dialTCP(ctx, proto, v6only, la, *ra)
			if err != nil {
				return nil, err
			}
			return c, nil
		case la != nil:
			l, err := s.listenTCP(proto, v6only, *la)
			if err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, fmt.Errorf("netstack: a TCP socket needs a remote address to dial or a local one to listen on: %w", syscall.EINVAL)
	case syscall.SOCK_DGRAM:
		c, err := s.udp(proto, v6only, la, ra)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("netstack: socket type %d: %w", sotype, syscall.ESOCKTNOSUPPORT)
}

// addrOf takes a net address apart; ok is false for none (nil, or a typed nil).
func addrOf(a net.Addr) (ip net.IP, port int, ok bool, err error) {
	switch a := a.(type) {
	case nil:
		return nil, 0, false, nil
	case *net.TCPAddr:
		if a == nil {
			return nil, 0, false, nil
		}
		ip, port = a.IP, a.Port
	case *net.UDPAddr:
		if a == nil {
			return nil, 0, false, nil
		}
		ip, port = a.IP, a.Port
	default:
		return nil, 0, false, fmt.Errorf("netstack: address %v (%T): %w", a, a, syscall.EAFNOSUPPORT)
	}
	if port < 0 || port > 0xffff {
		return nil, 0, false, fmt.Errorf("netstack: port %d out of range: %w", port, syscall.EINVAL)
	}
	if ip != nil && len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return nil, 0, false, fmt.Errorf("netstack: IP address of %d octets: %w", len(ip), syscall.EINVAL)
	}
	return ip, port, true, nil
}

// chooseProto picks the network protocol for a socket (see [Stack.Socket]).
func chooseProto(network string, family int, ips ...net.IP) (proto tcpip.NetworkProtocolNumber, v6only bool, err error) {
	suffix6 := strings.HasSuffix(network, "6")
	switch family {
	case syscall.AF_INET:
		return ipv4.ProtocolNumber, false, nil
	case syscall.AF_INET6:
		return ipv6.ProtocolNumber, suffix6, nil
	case syscall.AF_UNSPEC:
	default:
		return 0, false, fmt.Errorf("netstack: address family %d: %w", family, syscall.EAFNOSUPPORT)
	}
	switch {
	case strings.HasSuffix(network, "4"):
		return ipv4.ProtocolNumber, false, nil
	case suffix6:
		return ipv6.ProtocolNumber, true, nil
	}
	var v4 bool
	for _, ip := range ips {
		if ip == nil || ip.IsUnspecified() {
			continue
		}
		if ip.To4() == nil {
			return ipv6.ProtocolNumber, false, nil
		}
		v4 = true
	}
	if v4 {
		return ipv4.ProtocolNumber, false, nil
	}
	return ipv6.ProtocolNumber, false, nil
}

// fullAddr converts an address for a socket of protocol proto: a wildcard IP is
// gVisor's empty address (every address), an IPv4 address on an IPv6 socket is
// v4-mapped.
func fullAddr(ip net.IP, port int, proto tcpip.NetworkProtocolNumber) (tcpip.FullAddress, error) {
	fa := tcpip.FullAddress{Port: uint16(port)}
	if ip == nil || ip.IsUnspecified() {
		return fa, nil
	}
	if proto == ipv4.ProtocolNumber {
		v4 := ip.To4()
		if v4 == nil {
			return fa, fmt.Errorf("netstack: %v on an IPv4 socket: %w", ip, syscall.EAFNOSUPPORT)
		}
		fa.Addr = tcpip.AddrFrom4Slice(v4)
		return fa, nil
	}
	fa.Addr = tcpip.AddrFrom16Slice(ip.To16())
	return fa, nil
}

func (s *Stack) dialTCP(ctx context.Context, proto tcpip.NetworkProtocolNumber, v6only bool, la *tcpip.FullAddress, ra tcpip.FullAddress) (*gonet.TCPConn, error) {
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if terr != nil {
		return nil, sysErr("socket", terr)
	}
	if v6only {
		ep.SocketOptions().SetV6Only(true)
	}
	// Registered before Connect, which always reports ErrConnectStarted first.
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if la != nil {
		if terr := ep.Bind(*la); terr != nil {
			ep.Close()
			return nil, sysErr("bind", terr)
		}
	}
	terr = ep.Connect(ra)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctxErr(ctx.Err())
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, sysErr("connect", terr)
	}
	return gonet.NewTCPConn(wq, ep), nil
}

func (s *Stack) listenTCP(proto tcpip.NetworkProtocolNumber, v6only bool, la tcpip.FullAddress) (*gonet.TCPListener, error) {
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if terr != nil {
		return nil, sysErr("socket", terr)
	}
	ep.SocketOptions().SetV6Only(v6only)
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(la); terr != nil {
		ep.Close()
		return nil, sysErr("bind", terr)
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, sysErr("listen", terr)
	}
	return gonet.NewTCPListener(s.s, wq, ep), nil
}

func (s *Stack) udp(proto tcpip.NetworkProtocolNumber, v6only bool, la, ra *tcpip.FullAddress) (*gonet.UDPConn, error) {
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(udp.ProtocolNumber, proto, wq)
	if terr != nil {
		return nil, sysErr("socket", terr)
	}
	ep.SocketOptions().SetV6Only(v6only)
	ep.SocketOptions().SetBroadcast(true)
	if la != nil {
		if terr := ep.Bind(*la); terr != nil {
			ep.Close()
			return nil, sysErr("bind", terr)
		}
	}
	if ra != nil {
		if terr := ep.Connect(*ra); terr != nil {
			ep.Close()
			return nil, sysErr("connect", terr)
		}
	}
	return gonet.NewUDPConn(wq, ep), nil
}

// sysErr reports a gVisor error as the errno Linux gives for it, wrapped in an
// *os.SyscallError naming the call (so net's error reads "dial tcp 10.0.0.2:1883:
// connect: connection refused", as on Linux); one with no errno keeps gVisor's text.
func sysErr(call string, err tcpip.Error) error {
	if errno, ok := errnoOf(err); ok {
		return os.NewSyscallError(call, errno)
	}
	return fmt.Errorf("%s: %s", call, err)
}

func errnoOf(err tcpip.Error) (syscall.Errno, bool) {
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED, true
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET, true
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return syscall.ECONNABORTED, true
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT, true
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return syscall.ENETUNREACH, true
	case *tcpip.ErrHostUnreachable:
		return syscall.EHOSTUNREACH, true
	case *tcpip.ErrHostDown:
		return syscall.EHOSTDOWN, true
	case *tcpip.ErrPortInUse, *tcpip.ErrNoPortAvailable:
		return syscall.EADDRINUSE, true
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL, true
	case *tcpip.ErrAddressFamilyNotSupported:
		return syscall.EAFNOSUPPORT, true
	case *tcpip.ErrUnknownProtocol:
		return syscall.EPROTONOSUPPORT, true
	case *tcpip.ErrAlreadyConnected:
		return syscall.EISCONN, true
	case *tcpip.ErrAlreadyConnecting:
		return syscall.EALREADY, true
	case *tcpip.ErrInvalidEndpointState, *tcpip.ErrAlreadyBound, *tcpip.ErrInvalidOptionValue, *tcpip.ErrBadAddress:
		return syscall.EINVAL, true
	case *tcpip.ErrNotPermitted:
		return syscall.EPERM, true
	case *tcpip.ErrBroadcastDisabled:
		return syscall.EACCES, true
	case *tcpip.ErrNoBufferSpace:
		return syscall.ENOBUFS, true
	case *tcpip.ErrMessageTooLong:
		return syscall.EMSGSIZE, true
	case *tcpip.ErrNotSupported:
		return syscall.EOPNOTSUPP, true
	}
	return 0, false
}

// ctxErr is a dial cut short by its context: a deadline is a timeout (net.Error) that
// is also context.DeadlineExceeded, as the net package's own dial errors are.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return dialTimeout{}
	}
	return err
}

type dialTimeout struct{}

func (dialTimeout) Error() string   { return "i/o timeout" }
func (dialTimeout) Timeout() bool   { return true }
func (dialTimeout) Temporary() bool { return true }
func (dialTimeout) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}
