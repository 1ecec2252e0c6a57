package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// pair is two stacks on one link: a at 10.0.0.1 / fd00::1, b at 10.0.0.2 / fd00::2.
type pair struct {
	link *Link
	a, b *Stack
}

func newPair(t testing.TB, seed uint64) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	link := NewLink(seed, Impairment{})
	p := &pair{link: link, a: New(Config{}), b: New(Config{})}
	t.Cleanup(func() {
		cancel()
		p.a.Close()
		p.b.Close()
	})
	for i, st := range []*Stack{p.a, p.b} {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)}
		err := st.AddInterface(ctx, Interface{
			NIC: link.NewPort(mac),
			Addrs: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}), 64),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// echo serves c until it is closed, sending every datagram back.
func echo(c net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo(buf[:n], from)
	}
}

func listen(t testing.TB, s *Stack, port uint16) net.PacketConn {
	t.Helper()
	c, err := s.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends one datagram to dst and waits for its echo, retrying while
// neighbours resolve.
func roundTrip(t *testing.T, c net.PacketConn, dst net.Addr) {
	t.Helper()
	buf := make([]byte, 64)
	for try := 0; try < 20; try++ {
		if _, err := c.WriteTo([]byte("ping"), dst); err != nil {
			t.Fatalf("WriteTo %v: %v", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, from, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "ping" {
			t.Fatalf("echo %q, want ping", buf[:n])
		}
		got, _ := netip.ParseAddrPort(from.String())
		want, _ := netip.ParseAddrPort(dst.String())
		if got != want {
			t.Fatalf("echo from %v, want %v", from, dst)
		}
		c.SetReadDeadline(time.Time{})
		return
	}
	t.Fatalf("no echo from %v", dst)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestUDPEchoIPv4AndIPv6(t *testing.T) {
	p := newPair(t, 1)
	go echo(listen(t, p.a, 1883))
	c := listen(t, p.b, 40000)
	roundTrip(t, c, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1883})
	roundTrip(t, c, &net.UDPAddr{IP: net.ParseIP("fd00::1"), Port: 1883})
}

func TestListenUDPAddr(t *testing.T) {
	p := newPair(t, 1)
	srv, err := p.a.ListenUDPAddr(netip.MustParseAddrPort("10.0.0.1:1883"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go echo(srv)
	cli, err := p.b.ListenUDPAddr(netip.MustParseAddrPort("10.0.0.2:40001"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	roundTrip(t, cli, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1883})
}

// blast sends n numbered datagrams from b to a and counts what arrives,
// after a clean round trip so ARP is settled before impairment starts.
func blast(t *testing.T, seed uint64, imp Impairment, n int) (received, distinct int, st LinkStats) {
	t.Helper()
	p := newPair(t, seed)
	srv := listen(t, p.a, 1883)
	cli := listen(t, p.b, 40000)
	dst := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1883}
	go echo(srv)
	roundTrip(t, cli, dst) // resolve both ways

	p.link.SetImpairment(imp)
	before := p.link.Stats()
	srv2 := listen(t, p.a, 1884)
	dst2 := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1884}
	done := make(chan struct{})
	seen := make(map[uint32]int)
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			srv2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			k, _, err := srv2.ReadFrom(buf)
			if err != nil {
				return
			}
			if k == 4 {
				seen[binary.BigEndian.Uint32(buf)]++
				received++
			}
		}
	}()
	msg := make([]byte, 4)
	for i := range n {
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := cli.WriteTo(msg, dst2); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 {
			time.Sleep(time.Millisecond) // stay inside the receive queues
		}
	}
	<-done
	st = p.link.Stats()
	st.Sent -= before.Sent
	st.Delivered -= before.Delivered
	return received, len(seen), st
}

func TestLinkNoLossAllArrive(t *testing.T) {
	const n = 500
	got, distinct, st := blast(t, 7, Impairment{}, n)
	if got != n || distinct != n {
		t.Fatalf("received %d (%d distinct) of %d; link %+v", got, distinct, n, st)
	}
}

func TestLinkLossDropsSome(t *testing.T) {
	const n = 500
	got, distinct, st := blast(t, 7, Impairment{Loss: 0.2}, n)
	if st.Dropped == 0 || distinct >= n || distinct < n/2 {
		t.Fatalf("20%% loss: received %d distinct of %d, link dropped %d", distinct, n, st.Dropped)
	}
	if got != distinct {
		t.Fatalf("no duplication asked, yet %d received for %d distinct", got, distinct)
	}
	t.Logf("20%% loss: %d of %d arrived, link dropped %d", distinct, n, st.Dropped)
}

func TestLinkDuplicationCounted(t *testing.T) {
	const n = 500
	got, distinct, st := blast(t, 7, Impairment{Duplicate: 0.1}, n)
	if distinct != n {
		t.Fatalf("duplication only, yet %d distinct of %d", distinct, n)
	}
	if st.Duplicated == 0 || uint64(got-distinct) != st.Duplicated {
		t.Fatalf("received %d for %d distinct; link duplicated %d", got, distinct, st.Duplicated)
	}
	t.Logf("10%% duplication: %d received, %d duplicates", got, got-distinct)
}

func TestLinkReorderAndDelay(t *testing.T) {
	const n = 200
	got, distinct, st := blast(t, 7, Impairment{Reorder: 0.1, ReorderBy: 3 * time.Millisecond, Delay: time.Millisecond, Jitter: time.Millisecond}, n)
	if got != n || distinct != n || st.Reordered == 0 {
		t.Fatalf("received %d (%d distinct) of %d, reordered %d", got, distinct, n, st.Reordered)
	}
}

// TestLinkDeterministic: the same seed and frames give the same fate.
func TestLinkDeterministic(t *testing.T) {
	run := func(seed uint64) []int {
		l := NewLink(seed, Impairment{Loss: 0.3, Duplicate: 0.2})
		a := l.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 1})
		b := l.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 2})
		frame := make([]byte, 60)
		copy(frame, b.MAC())
		for i := range 200 {
			binary.BigEndian.PutUint32(frame[14:], uint32(i))
			a.Transmit(frame)
		}
		var got []int
		buf := make([]byte, 100)
		for {
			n, ok := b.Receive(buf)
			if !ok {
				return got
			}
			got = append(got, int(binary.BigEndian.Uint32(buf[14:n])))
		}
	}
	x, y, z := run(42), run(42), run(43)
	if len(x) == 0 || len(x) == 200 {
		t.Fatalf("30%% loss, 20%% duplication delivered %d of 200", len(x))
	}
	if !equal(x, y) {
		t.Fatal("same seed, different fates")
	}
	if equal(x, z) {
		t.Fatal("different seeds, same fates")
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGratuitousARP(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0x4d, 0x51, 1}
	f := GratuitousARP(mac, netip.MustParseAddr("10.0.0.1"))
	if len(f) != 60 {
		t.Fatalf("%d octets, want 60", len(f))
	}
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0x4d, 0x51, 1, 0x08, 0x06, // Ethernet
		0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		2, 0, 0, 0x4d, 0x51, 1, 10, 0, 0, 1, // sender
		0, 0, 0, 0, 0, 0, 10, 0, 0, 1, // target
	}
	if string(f[:len(want)]) != string(want) {
		t.Fatalf("frame\n% x\nwant\n% x", f[:len(want)], want)
	}
}

// TestFramesPadded: every frame the glue transmits is at least 60 octets.
func TestFramesPadded(t *testing.T) {
	p := newPair(t, 3)
	spy := &spyNIC{Port: p.link.NewPort(net.HardwareAddr{2, 0, 0, 0, 0, 9})}
	s := New(Config{})
	defer s.Close()
	if err := s.AddInterface(context.Background(), Interface{NIC: spy, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.9/24")}}); err != nil {
		t.Fatal(err)
	}
	go echo(listen(t, p.a, 1883))
	roundTrip(t, listen(t, s, 40000), &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1).To4(), Port: 1883})
	if spy.short != 0 || spy.sent == 0 {
		t.Fatalf("%d of %d frames shorter than 60 octets", spy.short, spy.sent)
	}
}

type spyNIC struct {
	*Port
	sent, short int
}

func (s *spyNIC) Transmit(f []byte) error {
	s.sent++
	if len(f) < 60 {
		s.short++
	}
	return s.Port.Transmit(f)
}
