package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPlanFor(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		v6only  bool
		network string
		address string
		stack   Stack
	}{
		{":1883", false, "udp", "[::]:1883", DualStack},
		{"[::]:1883", false, "udp", "[::]:1883", DualStack},
		{"[::]:1883", true, "udp6", "[::]:1883", IPv6Only},
		{"0.0.0.0:1883", false, "udp4", "0.0.0.0:1883", IPv4Only},
		{"127.0.0.1:0", false, "udp4", "127.0.0.1:0", IPv4Only},
		{"[::ffff:127.0.0.1]:5", false, "udp4", "127.0.0.1:5", IPv4Only},
		{"[::1]:1883", false, "udp6", "[::1]:1883", IPv6Only},
		{"[fe80::1%eth0]:1883", false, "udp6", "[fe80::1%eth0]:1883", IPv6Only},
		{"localhost:1883", false, "udp", "localhost:1883", DualStack},
	} {
		p, err := PlanFor(tc.addr, Options{IPv6Only: tc.v6only})
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		if p.Network != tc.network || p.Address != tc.address || p.Stack != tc.stack {
			t.Errorf("%s (v6only %v): got %+v, want %s %s %v", tc.addr, tc.v6only, p, tc.network, tc.address, tc.stack)
		}
	}
	for _, bad := range []string{"1883", "[::]", "127.0.0.1:", "a b:1"} {
		if _, err := PlanFor(bad, Options{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func hasIPv6(t *testing.T) bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// roundTrip sends from a client bound to from to the listener's port on to, and
// checks the listener sees it and can answer.
func roundTrip(t *testing.T, l *net.UDPConn, from, to string) error {
	t.Helper()
	port := l.LocalAddr().(*net.UDPAddr).Port
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := netip.AddrPortFrom(netip.MustParseAddr(to), uint16(port))
	if _, err := c.WriteToUDPAddrPort([]byte("ping "+to), dst); err != nil {
		return err
	}
	buf := make([]byte, 64)
	l.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, peer, err := l.ReadFromUDPAddrPort(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "ping "+to {
		t.Fatalf("got %q", buf[:n])
	}
	if _, err := l.WriteToUDPAddrPort([]byte("pong"), peer); err != nil {
		t.Fatalf("reply to %v: %v", peer, err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err = c.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("no pong: %q %v", buf[:n], err)
	}
	return nil
}

func TestDualStackReachesBothFamilies(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 on this host")
	}
	l, err := Listen(context.Background(), "[::]:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := roundTrip(t, l, "127.0.0.1:0", "127.0.0.1"); err != nil {
		t.Errorf("IPv4 client: %v", err)
	}
	if err := roundTrip(t, l, "[::1]:0", "::1"); err != nil {
		t.Errorf("IPv6 client: %v", err)
	}
	if v := sockopt(t, l, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY); v != 0 {
		t.Errorf("IPV6_V6ONLY = %d on a dual-stack socket", v)
	}
}

func TestIPv6OnlyWildcard(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 on this host")
	}
	l, err := Listen(context.Background(), "[::]:0", Options{IPv6Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := roundTrip(t, l, "[::1]:0", "::1"); err != nil {
		t.Errorf("IPv6 client: %v", err)
	}
	if v := sockopt(t, l, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY); v != 1 {
		t.Errorf("IPV6_V6ONLY = %d", v)
	}
	// The same port stays free for an IPv4 socket.
	port := l.LocalAddr().(*net.UDPAddr).Port
	l4, err := Listen(context.Background(), net.JoinHostPort("0.0.0.0", itoa(port)), Options{})
	if err != nil {
		t.Fatalf("IPv4 socket on the IPv6-only socket's port: %v", err)
	}
	l4.Close()
}

func TestIPv4Only(t *testing.T) {
	l, err := Listen(context.Background(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := roundTrip(t, l, "127.0.0.1:0", "127.0.0.1"); err != nil {
		t.Errorf("IPv4 client: %v", err)
	}
	if hasIPv6(t) {
		if err := roundTrip(t, l, "[::1]:0", "::1"); err == nil {
			t.Errorf("an IPv6 client reached an IPv4-only socket")
		}
	}
}

func TestIPv6Loopback(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 on this host")
	}
	l, err := Listen(context.Background(), "[::1]:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := roundTrip(t, l, "[::1]:0", "::1"); err != nil {
		t.Errorf("IPv6 client: %v", err)
	}
}

func TestSocketOptions(t *testing.T) {
	l, err := Listen(context.Background(), "127.0.0.1:0", Options{ReceiveBuffer: 1 << 18, SendBuffer: 1 << 17})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := sockopt(t, l, syscall.SOL_SOCKET, syscall.SO_BROADCAST); v != 1 {
		t.Errorf("SO_BROADCAST = %d", v)
	}
	// Linux doubles the requested size (and may cap it at rmem_max): it grows at least.
	if v := sockopt(t, l, syscall.SOL_SOCKET, syscall.SO_RCVBUF); v < 1<<17 {
		t.Errorf("SO_RCVBUF = %d after asking for %d", v, 1<<18)
	}
	if v := sockopt(t, l, syscall.SOL_SOCKET, syscall.SO_SNDBUF); v < 1<<16 {
		t.Errorf("SO_SNDBUF = %d after asking for %d", v, 1<<17)
	}
}

func TestFallbackToIPv4(t *testing.T) {
	old := listenPacket
	defer func() { listenPacket = old }()
	var tried []string
	listenPacket = func(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
		tried = append(tried, network+" "+address)
		if network != "udp4" {
			return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EAFNOSUPPORT}
		}
		return old(ctx, lc, network, "127.0.0.1:0") // not the wildcard, in a test
	}
	l, err := Listen(context.Background(), ":0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(tried) != 2 || tried[0] != "udp [::]:0" || tried[1] != "udp4 0.0.0.0:0" {
		t.Errorf("tried %q", tried)
	}
	// An explicit IPv6 address does not fall back.
	tried = nil
	if _, err := Listen(context.Background(), "[::1]:0", Options{}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("explicit IPv6: %v", err)
	}
	if len(tried) != 1 {
		t.Errorf("tried %q", tried)
	}
}

func TestListenErrorNamesAddress(t *testing.T) {
	l, err := Listen(context.Background(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.LocalAddr().String()
	_, err = Listen(context.Background(), addr, Options{})
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen on %s: %v", addr, err)
	}
	if got := err.Error(); !strings.Contains(got, "udp: listen "+addr) {
		t.Errorf("error %q does not name the address", got)
	}
}

func sockopt(t *testing.T, c *net.UDPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

func itoa(n int) string { return strconv.Itoa(n) }
