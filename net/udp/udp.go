package udp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Options tune a listening socket. The zero value is the default: dual stack on a
// wildcard address, the kernel's buffer sizes.
type Options struct {
	// IPv6Only makes a wildcard IPv6 address ("[::]:1883") accept IPv6 only, so that
	// another socket may take IPv4 on the same port.
	IPv6Only bool
	// ReceiveBuffer and SendBuffer set SO_RCVBUF and SO_SNDBUF in bytes (0: the
	// kernel's default). Linux doubles the value and caps it at net.core.rmem_max /
	// wmem_max unless the process may raise it.
	ReceiveBuffer int
	SendBuffer    int
}

// Stack says which address families a listen address serves.
type Stack uint8

const (
	DualStack Stack = iota // IPv6 and IPv4 (IPv4 as IPv4-mapped IPv6)
	IPv4Only
	IPv6Only
)

func (s Stack) String() string {
	switch s {
	case DualStack:
		return "dual-stack"
	case IPv4Only:
		return "ipv4"
	case IPv6Only:
		return "ipv6"
	}
	return "unknown"
}

// Plan is how Listen will open an address: the network for net.ListenConfig and
// the address, with the family it serves.
type Plan struct {
	Network string // "udp" (dual), "udp4" or "udp6"
	Address string
	Stack   Stack
}

// PlanFor resolves how addr is to be opened. addr is "host:port" with host empty, a
// literal IP (IPv6 in brackets, with an optional %zone) or a name; the port may be 0.
func PlanFor(addr string, opts Options) (Plan, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Plan{}, fmt.Errorf("udp: listen address %q: %w (want host:port, e.g. [::]:1883 or 0.0.0.0:1883)", addr, err)
	}
	if port == "" {
		return Plan{}, fmt.Errorf("udp: listen address %q has no port", addr)
	}
	if host == "" {
		host = "::"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// A name: let Go resolve it and pick the family.
		if strings.ContainsAny(host, " /") {
			return Plan{}, fmt.Errorf("udp: listen address %q: bad host %q", addr, host)
		}
		return Plan{Network: "udp", Address: addr, Stack: DualStack}, nil
	}
	hp := net.JoinHostPort(ip.String(), port)
	switch {
	case ip.Is4() || ip.Is4In6():
		return Plan{Network: "udp4", Address: net.JoinHostPort(ip.Unmap().String(), port), Stack: IPv4Only}, nil
	case ip.IsUnspecified() && !opts.IPv6Only:
		return Plan{Network: "udp", Address: hp, Stack: DualStack}, nil
	default:
		return Plan{Network: "udp6", Address: hp, Stack: IPv6Only}, nil
	}
}

// listenPacket is net.ListenConfig.ListenPacket, replaceable in tests.
var listenPacket = func(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	return lc.ListenPacket(ctx, network, address)
}

// Listen opens a UDP socket on addr (see PlanFor). A dual-stack address falls back to
// IPv4 only ("0.0.0.0" and the same port) when the host has no IPv6.
func Listen(ctx context.Context, addr string, opts Options) (*net.UDPConn, error) {
	plan, err := PlanFor(addr, opts)
	if err != nil {
		return nil, err
	}
	c, err := listen(ctx, plan, opts)
	if err != nil && plan.Stack == DualStack && noIPv6(err) {
		if host, port, _ := net.SplitHostPort(plan.Address); host == "::" {
			c, err = listen(ctx, Plan{Network: "udp4", Address: net.JoinHostPort("0.0.0.0", port), Stack: IPv4Only}, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("udp: listen %s: %w", addr, err)
	}
	return c, nil
}

func listen(ctx context.Context, plan Plan, opts Options) (*net.UDPConn, error) {
	lc := &net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		return control(network, rc, plan.Stack, opts)
	}}
	pc, err := listenPacket(ctx, lc, plan.Network, plan.Address)
	if err != nil {
		return nil, err
	}
	c, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("not a UDP socket: %T", pc)
	}
	if opts.ReceiveBuffer > 0 {
		if err := c.SetReadBuffer(opts.ReceiveBuffer); err != nil {
			c.Close()
			return nil, fmt.Errorf("receive buffer %d: %w", opts.ReceiveBuffer, err)
		}
	}
	if opts.SendBuffer > 0 {
		if err := c.SetWriteBuffer(opts.SendBuffer); err != nil {
			c.Close()
			return nil, fmt.Errorf("send buffer %d: %w", opts.SendBuffer, err)
		}
	}
	return c, nil
}
