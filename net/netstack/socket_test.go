package netstack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// Socket keeps tamago-go's net.SocketFunc signature: the image assigns it.
var _ = func(s *Stack) func(context.Context, string, int, int, net.Addr, net.Addr) (interface{}, error) {
	return s.Socket
}

// tcpPair is two TCP-capable stacks on one link: a at 10.0.0.1 / fd00::1, b at
// 10.0.0.2 / fd00::2.
func tcpPair(t *testing.T) (a, b *Stack) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	link := NewLink(1, Impairment{})
	a, b = New(Config{TCP: true}), New(Config{TCP: true})
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
	})
	for i, st := range []*Stack{a, b} {
		err := st.AddInterface(ctx, Interface{
			NIC: link.NewPort(net.HardwareAddr{0x02, 0, 0, 0, 1, byte(i + 1)}),
			Addrs: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}), 64),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
func udpAddr(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// socket calls s.Socket and checks the result is of type T.
func socket[T any](t *testing.T, s *Stack, network string, family, sotype int, laddr, raddr net.Addr) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Socket(ctx, network, family, sotype, laddr, raddr)
	if err != nil {
		t.Fatalf("Socket(%s, %d, %d, %v, %v): %v", network, family, sotype, laddr, raddr, err)
	}
	v, ok := c.(T)
	if !ok {
		t.Fatalf("Socket(%s, %d, %d, %v, %v) = %T, want %T", network, family, sotype, laddr, raddr, c, v)
	}
	if cl, ok := c.(io.Closer); ok {
		t.Cleanup(func() { cl.Close() })
	}
	return v
}

// serveEcho accepts on l and echoes every connection, reporting each peer.
func serveEcho(l net.Listener) <-chan net.Addr {
	peers := make(chan net.Addr, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(peers)
				return
			}
			peers <- c.RemoteAddr()
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return peers
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// TestSocketTCPEcho: a listener from Socket on one stack (dual stack, as net.Listen
// "tcp" "[::]:PORT" asks for it), connections dialled through Socket from the other
// over IPv4 and IPv6, with AF_INET/AF_INET6 and with AF_UNSPEC picking by address,
// and a bound local address; a large transfer both ways.
func TestSocketTCPEcho(t *testing.T) {
	a, b := tcpPair(t)
	l := socket[net.Listener](t, a, "tcp", syscall.AF_INET6, syscall.SOCK_STREAM, tcpAddr("[::]:8883"), nil)
	peers := serveEcho(l)
	for _, d := range []struct {
		network  string
		family   int
		laddr    net.Addr
		raddr    string
		peer     string // the address the listener sees
		peerPort int    // and its port, when bound (0: ephemeral)
	}{
		{"tcp", syscall.AF_INET, nil, "10.0.0.1:8883", "10.0.0.2", 0},
		{"tcp6", syscall.AF_INET6, nil, "[fd00::1]:8883", "fd00::2", 0},
		{"tcp", syscall.AF_UNSPEC, nil, "10.0.0.1:8883", "10.0.0.2", 0},
		{"tcp", syscall.AF_UNSPEC, nil, "[fd00::1]:8883", "fd00::2", 0},
		{"tcp", syscall.AF_INET, tcpAddr("10.0.0.2:40123"), "10.0.0.1:8883", "10.0.0.2", 40123},
	} {
		c := socket[net.Conn](t, b, d.network, d.family, syscall.SOCK_STREAM, d.laddr, tcpAddr(d.raddr))
		echoOnce(t, c, "hello over "+d.raddr)
		if got := c.RemoteAddr().String(); got != d.raddr {
			t.Errorf("%s %s: RemoteAddr %s", d.network, d.raddr, got)
		}
		select {
		case p := <-peers:
			ap := p.(*net.TCPAddr).AddrPort()
			if ap.Addr().Unmap().String() != d.peer || (d.peerPort != 0 && int(ap.Port()) != d.peerPort) {
				t.Errorf("%s %s: listener saw %v, want %s port %d", d.network, d.raddr, p, d.peer, d.peerPort)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no accept")
		}
		c.Close()
	}

	// 1 MiB each way on one connection.
	c := socket[net.Conn](t, b, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.1:8883"))
	c.SetDeadline(time.Now().Add(30 * time.Second))
	want := make([]byte, 1<<20)
	rand.Read(want)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("1 MiB echo differs")
	}
}

// TestSocketTCPListenerClose: closing a listener ends a blocked Accept.
func TestSocketTCPListenerClose(t *testing.T) {
	a, _ := tcpPair(t)
	l := socket[net.Listener](t, a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, tcpAddr("0.0.0.0:8000"), nil)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

// TestSocketUDP: datagram sockets from Socket: a dual-stack wildcard one (what
// net.ListenPacket("udp", "[::]:1883") asks for) echoing, reached by a connected
// IPv4 socket (net.Conn), an unconnected IPv6 one and a v4-mapped destination.
func TestSocketUDP(t *testing.T) {
	a, b := tcpPair(t)
	srv := socket[net.PacketConn](t, a, "udp", syscall.AF_INET6, syscall.SOCK_DGRAM, udpAddr("[::]:1883"), nil)
	go echo(srv)

	c := socket[net.Conn](t, b, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, nil, udpAddr("10.0.0.1:1883"))
	buf := make([]byte, 64)
	var ok bool
	for try := 0; try < 20 && !ok; try++ { // the first may wait for ARP
		c.Write([]byte("ping4"))
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == "ping4" {
			ok = true
		}
	}
	if !ok {
		t.Fatal("no echo on the connected IPv4 socket")
	}

	u6 := socket[net.PacketConn](t, b, "udp6", syscall.AF_INET6, syscall.SOCK_DGRAM, udpAddr("[::]:0"), nil)
	roundTrip(t, u6, udpAddr("[fd00::1]:1883"))
	// A dual-stack socket sends to IPv4 peers by their v4-mapped address, as
	// net.UDPConn does on an AF_INET6 socket.
	dual := socket[net.PacketConn](t, b, "udp", syscall.AF_INET6, syscall.SOCK_DGRAM, udpAddr("[::]:40002"), nil)
	mapped := &net.UDPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1883}
	if _, err := dual.WriteTo([]byte("ping"), mapped); err != nil {
		t.Fatal(err)
	}
	dual.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := dual.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("v4-mapped echo: %q %v", buf[:n], err)
	}
	if ap := from.(*net.UDPAddr).AddrPort(); ap.Addr().Unmap() != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("v4-mapped echo from %v", from)
	}
}

// TestSocketV6Only: a "udp6"/"tcp6" socket is IPv6 only; "tcp" on AF_INET6 is not.
func TestSocketV6Only(t *testing.T) {
	a, b := tcpPair(t)
	l := socket[net.Listener](t, a, "tcp6", syscall.AF_INET6, syscall.SOCK_STREAM, tcpAddr("[::]:8884"), nil)
	serveEcho(l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.Socket(ctx, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.1:8884"))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("IPv4 dial to an IPv6-only listener: %v, want ECONNREFUSED", err)
	}
	echoOnce(t, socket[net.Conn](t, b, "tcp", syscall.AF_INET6, syscall.SOCK_STREAM, nil, tcpAddr("[fd00::1]:8884")), "v6")
}

// TestSocketTLS: crypto/tls runs over the stack's TCP connections as over any
// net.Conn (what the bridge's ssl:// does in the image).
func TestSocketTLS(t *testing.T) {
	a, b := tcpPair(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "10.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	l := socket[net.Listener](t, a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, tcpAddr("0.0.0.0:8885"), nil)
	serveEcho(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	raw := socket[net.Conn](t, b, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.1:8885"))
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "10.0.0.1"})
	echoOnce(t, c, "secret")
	if st := c.ConnectionState(); !st.HandshakeComplete || st.Version != tls.VersionTLS13 {
		t.Fatalf("TLS state: complete %v, version %x", st.HandshakeComplete, st.Version)
	}
}

// TestSocketErrors: what Socket refuses, and gVisor's errors as Linux's errnos.
func TestSocketErrors(t *testing.T) {
	a, b := tcpPair(t)
	noTCP := New(Config{})
	defer noTCP.Close()
	ctx := context.Background()
	l := socket[net.Listener](t, a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, tcpAddr("10.0.0.1:9000"), nil)
	defer l.Close()
	for _, c := range []struct {
		name          string
		s             *Stack
		network       string
		family, stype int
		laddr, raddr  net.Addr
		want          error
	}{
		{"TCP not enabled", noTCP, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, tcpAddr("0.0.0.0:80"), nil, syscall.EPROTONOSUPPORT},
		{"unix socket", a, "unix", syscall.AF_UNIX, syscall.SOCK_STREAM, &net.UnixAddr{Name: "/tmp/x", Net: "unix"}, nil, syscall.EPROTONOSUPPORT},
		{"raw IP", a, "ip4:icmp", syscall.AF_INET, syscall.SOCK_RAW, nil, &net.IPAddr{IP: net.IPv4(10, 0, 0, 2)}, syscall.EPROTONOSUPPORT},
		{"unix family", a, "", syscall.AF_UNIX, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.2:1"), syscall.EAFNOSUPPORT},
		{"seqpacket", a, "", syscall.AF_INET, syscall.SOCK_SEQPACKET, nil, tcpAddr("10.0.0.2:1"), syscall.ESOCKTNOSUPPORT},
		{"address type", a, "", syscall.AF_INET, syscall.SOCK_STREAM, nil, &net.IPAddr{IP: net.IPv4(10, 0, 0, 2)}, syscall.EAFNOSUPPORT},
		{"no address", a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, nil, syscall.EINVAL},
		{"typed nil addresses", a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, (*net.TCPAddr)(nil), (*net.TCPAddr)(nil), syscall.EINVAL},
		{"IPv6 on AF_INET", a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("[fd00::2]:80"), syscall.EAFNOSUPPORT},
		{"port range", a, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, &net.UDPAddr{Port: 70000}, nil, syscall.EINVAL},
		{"refused", b, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.1:9001"), syscall.ECONNREFUSED},
		{"address in use", a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, tcpAddr("10.0.0.1:9000"), nil, syscall.EADDRINUSE},
		{"UDP beside a TCP port", a, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, udpAddr("10.0.0.1:9000"), nil, nil},
		{"not a local address", a, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, udpAddr("10.0.0.9:9000"), nil, syscall.EADDRNOTAVAIL},
		{"no route", a, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("192.0.2.1:80"), syscall.ENETUNREACH},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.s.Socket(ctx, c.network, c.family, c.stype, c.laddr, c.raddr)
			if cl, ok := got.(io.Closer); ok {
				defer cl.Close()
			}
			if c.want == nil {
				if err != nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || got != nil {
				t.Fatalf("got %v, %v; want an error wrapping %v", got, err, c.want)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("second UDP bind", func(t *testing.T) {
		u := socket[net.PacketConn](t, a, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, udpAddr("10.0.0.1:9100"), nil)
		defer u.Close()
		_, err := a.Socket(ctx, "udp", syscall.AF_INET, syscall.SOCK_DGRAM, udpAddr("10.0.0.1:9100"), nil)
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("got %v, want EADDRINUSE", err)
		}
	})
	t.Run("dial deadline", func(t *testing.T) {
		// 10.0.0.99 is on the link but nobody answers its ARP: the dial waits for ctx.
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := a.Socket(ctx, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.99:80"))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want a timeout", err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("dial returned after %v", d)
		}
	})
	t.Run("dial cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := a.Socket(ctx, "tcp", syscall.AF_INET, syscall.SOCK_STREAM, nil, tcpAddr("10.0.0.99:80"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}
