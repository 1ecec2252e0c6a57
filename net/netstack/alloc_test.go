package netstack

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// Allocations of one steady-state round trip between two stacks on an unimpaired
// Link: a datagram from A to B and one back, each sent and received by the test
// goroutine while the two interfaces' receive goroutines inject the frames. The
// counts are of the whole process, so they include the receive goroutines and
// everything gVisor does; the Link itself allocates nothing without impairment.
//
// Measured (go1.26, linux/amd64, no race detector), per round trip:
//
//   - gVisor's channel endpoint and gonet's net.PacketConn, as the package was
//     before its own link endpoint (commit e4d4636, the same exchange through an
//     echo goroutine): 42, of which 4 were the Link's (a clone and a queue slot
//     per frame) and 4 the channel glue's (a PacketBufferList and AsSlices per
//     frame);
//   - gonet over this package's link endpoint: 34 (gonet itself: a waiter
//     entry, a deadline select, a net.UDPAddr and a tcpip.FullAddress per read
//     and write);
//   - UDPBind on gVisor's own UDP endpoint (this session's first Bind): 20, all
//     gVisor's: on send, FindRoute for an unconnected destination, the
//     LimitedReader of WriteFromReader, the send buffer's release closure and
//     Route.resolvedFields; on receive, three interface boxings of the IP header
//     (PacketBuffer.Network) and a queued udpPacket;
//   - UDPBind as it is now, its own transport endpoint on the stack's
//     demultiplexer, a route cached per peer and the UDP header built by the Bind:
//     bindRoundTripAllocs. (An IPv4 datagram that may be fragmented also draws an
//     identification from gVisor's random source, which allocates its two-octet
//     buffer: the Bind sets Don't Fragment when the datagram fits the MTU, as Linux
//     does.) Packet buffers, views and chunks come from gVisor's pools.
const bindRoundTripAllocs = 0

// roundTripper runs one round trip.
type roundTripper func(tb testing.TB)

func bindRoundTrip(tb testing.TB, p *pair) roundTripper {
	a := listenBind(tb, p.a, "[::]:40000")
	b := listenBind(tb, p.b, "[::]:1883")
	out := []serve.Packet{{Buf: make([]byte, 32), Addr: netip.AddrPortFrom(b4, 1883)}}
	reply := make([]serve.Packet, 1)
	in := packets(1, 2048)
	exchangeOnce := func(tb testing.TB) {
		if n, err := a.SendBatch(out); n != 1 {
			tb.Fatalf("A SendBatch: %v", err)
		}
		if n, err := b.ReceiveBatch(in); n != 1 {
			tb.Fatalf("B ReceiveBatch: %v", err)
		}
		reply[0] = serve.Packet{Buf: in[0].Buf[:in[0].N], Addr: in[0].Addr}
		if n, err := b.SendBatch(reply); n != 1 {
			tb.Fatalf("B SendBatch: %v", err)
		}
		if n, err := a.ReceiveBatch(in); n != 1 {
			tb.Fatalf("A ReceiveBatch: %v", err)
		}
	}
	return exchangeOnce
}

func gonetRoundTrip(tb testing.TB, p *pair) roundTripper {
	a := listen(tb, p.a, 40000)
	b := listen(tb, p.b, 1883)
	dst := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2).To4(), Port: 1883}
	msg := make([]byte, 32)
	buf := make([]byte, 2048)
	return func(tb testing.TB) {
		if _, err := a.WriteTo(msg, dst); err != nil {
			tb.Fatal(err)
		}
		n, from, err := b.ReadFrom(buf)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := b.WriteTo(buf[:n], from); err != nil {
			tb.Fatal(err)
		}
		if _, _, err := a.ReadFrom(buf); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestRoundTripAllocs reports the allocations of a round trip through gonet and
// through UDPBind, and holds UDPBind to bindRoundTripAllocs.
func TestRoundTripAllocs(t *testing.T) {
	measure := func(mk func(testing.TB, *pair) roundTripper) float64 {
		p := newPair(t, 1)
		rt := mk(t, p)
		for range 100 { // resolve neighbours, warm the pools
			rt(t)
		}
		return testing.AllocsPerRun(2000, func() { rt(t) })
	}
	g := measure(gonetRoundTrip)
	b := measure(bindRoundTrip)
	t.Logf("allocations per round trip: gonet net.PacketConn %.1f, UDPBind %.1f (race detector %v)", g, b, raceEnabled)
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector; counts are not comparable")
	}
	if b > bindRoundTripAllocs+0.1 { // AllocsPerRun averages: allow a rare pool refill
		t.Fatalf("UDPBind round trip: %.1f allocations, budget %d", b, bindRoundTripAllocs)
	}
}

// TestSetReadDeadlineAllocs: the driver loop sets a deadline before each blocking
// receive; that must not allocate.
func TestSetReadDeadlineAllocs(t *testing.T) {
	p := newPair(t, 1)
	b := listenBind(t, p.a, "[::]:1883")
	n := testing.AllocsPerRun(1000, func() {
		b.SetReadDeadline(time.Now().Add(time.Hour))
		b.SetReadDeadline(time.Now().Add(-time.Second))
		b.SetReadDeadline(time.Time{})
	})
	if n != 0 {
		t.Fatalf("SetReadDeadline: %.1f allocations", n)
	}
}

func benchRoundTrip(b *testing.B, mk func(testing.TB, *pair) roundTripper) {
	rt := mk(b, newPair(b, 1))
	for range 100 {
		rt(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rt(b)
	}
}

func BenchmarkRoundTripBind(b *testing.B)  { benchRoundTrip(b, bindRoundTrip) }
func BenchmarkRoundTripGonet(b *testing.B) { benchRoundTrip(b, gonetRoundTrip) }
