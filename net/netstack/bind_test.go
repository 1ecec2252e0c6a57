package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/net/serve"
)

var (
	a4 = netip.MustParseAddr("10.0.0.1")
	b4 = netip.MustParseAddr("10.0.0.2")
	a6 = netip.MustParseAddr("fd00::1")
	b6 = netip.MustParseAddr("fd00::2")
)

// gatedNIC is a Port whose Transmit can be made to answer board.ErrTxFull (busy > 0
// times, or for ever while stuck) or fail outright (while broken).
type gatedNIC struct {
	*Port
	busy   atomic.Int64
	stuck  atomic.Bool
	broken atomic.Bool
	calls  atomic.Int64
}

var errBroken = errors.New("test NIC: controller on fire")

func (g *gatedNIC) Transmit(f []byte) error {
	g.calls.Add(1)
	if g.broken.Load() {
		return errBroken
	}
	if g.stuck.Load() || g.busy.Add(-1) >= 0 {
		return fmt.Errorf("test NIC ring: %w", board.ErrTxFull)
	}
	g.busy.Store(0)
	return g.Port.Transmit(f)
}

// gatedPair is two stacks on one link like [newPair], with a's NIC a gatedNIC.
func gatedPair(t testing.TB, txWait time.Duration) (p *pair, gate *gatedNIC) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	link := NewLink(1, Impairment{})
	p = &pair{link: link, a: New(Config{}), b: New(Config{})}
	t.Cleanup(func() {
		cancel()
		p.a.Close()
		p.b.Close()
	})
	for i, st := range []*Stack{p.a, p.b} {
		var nic board.NIC = link.NewPort(net.HardwareAddr{0x02, 0, 0, 0, 2, byte(i + 1)})
		if i == 0 {
			gate = &gatedNIC{Port: nic.(*Port)}
			nic = gate
		}
		err := st.AddInterface(ctx, Interface{
			NIC: nic,
			Addrs: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}), 64),
			},
			TxWait: txWait,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return p, gate
}

func listenBind(t testing.TB, s *Stack, ap string) *UDPBind {
	t.Helper()
	b, err := s.ListenBindAddr(netip.MustParseAddrPort(ap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func packets(n, size int) []serve.Packet {
	pkts := make([]serve.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

// echoBind serves b until it is closed, sending every datagram back to its source.
func echoBind(b *UDPBind) {
	in := packets(BindBatchSize, 2048)
	out := make([]serve.Packet, 0, BindBatchSize)
	for {
		n, err := b.ReceiveBatch(in)
		if err != nil {
			return
		}
		out = out[:0]
		for _, p := range in[:n] {
			out = append(out, serve.Packet{Buf: p.Buf[:p.N], Addr: p.Addr})
		}
		b.SendBatch(out)
	}
}

// exchange sends msg to dst on c and waits for one datagram back, retrying while
// neighbours resolve; it returns what came back.
func exchange(t testing.TB, c *UDPBind, dst netip.AddrPort, msg string) serve.Packet {
	t.Helper()
	in := packets(1, 2048)
	for try := 0; try < 20; try++ {
		if n, err := c.SendBatch([]serve.Packet{{Buf: []byte(msg), Addr: dst}}); n != 1 {
			t.Fatalf("SendBatch to %v: %d, %v", dst, n, err)
		}
		c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := c.ReceiveBatch(in)
		if isTimeout(err) {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("ReceiveBatch: %d, %v", n, err)
		}
		c.SetReadDeadline(time.Time{})
		return in[0]
	}
	t.Fatalf("no answer from %v", dst)
	return serve.Packet{}
}

// TestBindIPv4AndIPv6Peers: a dual-stack Bind talks to IPv4 and IPv6 peers and
// reports IPv4 sources unmapped, on both sides.
func TestBindIPv4AndIPv6Peers(t *testing.T) {
	p := newPair(t, 1)
	srv, err := p.a.ListenBind(1883)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.String() != "[::]:1883" || srv.BatchSize() != BindBatchSize {
		t.Fatalf("String %q, BatchSize %d", srv, srv.BatchSize())
	}
	seen := make(chan netip.AddrPort, 4)
	go func() {
		in := packets(4, 2048)
		for {
			n, err := srv.ReceiveBatch(in)
			if err != nil {
				return
			}
			for _, q := range in[:n] {
				seen <- q.Addr
				srv.SendBatch([]serve.Packet{{Buf: q.Buf[:q.N], Addr: q.Addr}})
			}
		}
	}()
	cli := listenBind(t, p.b, "[::]:40000")
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(a4, 1883), netip.AddrPortFrom(a6, 1883)} {
		got := exchange(t, cli, dst, "ping")
		if string(got.Buf[:got.N]) != "ping" || got.Trunc {
			t.Fatalf("echo %q (trunc %v)", got.Buf[:got.N], got.Trunc)
		}
		if got.Addr != dst {
			t.Fatalf("echo from %v, want %v", got.Addr, dst)
		}
		want := netip.AddrPortFrom(b4, 40000)
		if dst.Addr().Is6() {
			want = netip.AddrPortFrom(b6, 40000)
		}
		if from := <-seen; from != want {
			t.Fatalf("server saw %v, want %v", from, want)
		}
	}
}

// TestBindFamilies: an IPv4-only Bind and an IPv6 address Bind carry their family
// only; a destination of the other family is refused as no route, not sent.
func TestBindFamilies(t *testing.T) {
	p := newPair(t, 1)
	go echoBind(listenBind(t, p.a, "0.0.0.0:1883"))
	go echoBind(listenBind(t, p.a, "[fd00::1]:1884"))

	c4 := listenBind(t, p.b, "10.0.0.2:40001")
	c6 := listenBind(t, p.b, "[fd00::2]:40002")
	any4 := listenBind(t, p.b, "0.0.0.0:40003")
	for _, c := range []struct {
		b          *UDPBind
		reach, not netip.Addr
	}{{c4, a4, a6}, {c6, a6, a4}, {any4, a4, a6}} {
		if !c.b.Reaches(c.reach) || c.b.Reaches(c.not) || c.b.Reaches(netip.Addr{}) {
			t.Fatalf("%v: Reaches(%v)=%v Reaches(%v)=%v", c.b, c.reach, c.b.Reaches(c.reach), c.not, c.b.Reaches(c.not))
		}
		n, err := c.b.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: netip.AddrPortFrom(c.not, 1883)}})
		if n != 0 || !errors.Is(err, serve.ErrNoRoute) {
			t.Fatalf("%v: send to %v: %d, %v; want ErrNoRoute", c.b, c.not, n, err)
		}
	}
	if got := exchange(t, c4, netip.AddrPortFrom(a4, 1883), "v4"); got.Addr != netip.AddrPortFrom(a4, 1883) {
		t.Fatalf("IPv4 echo from %v", got.Addr)
	}
	if got := exchange(t, any4, netip.AddrPortFrom(a4, 1883), "v4"); got.Addr != netip.AddrPortFrom(a4, 1883) {
		t.Fatalf("IPv4 echo from %v", got.Addr)
	}
	if got := exchange(t, c6, netip.AddrPortFrom(a6, 1884), "v6"); got.Addr != netip.AddrPortFrom(a6, 1884) {
		t.Fatalf("IPv6 echo from %v", got.Addr)
	}
	// No route: 192.0.2.1 is on no subnet and there is no gateway.
	n, err := c4.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: netip.MustParseAddrPort("192.0.2.1:1")}})
	if n != 0 || !errors.Is(err, serve.ErrNoRoute) {
		t.Fatalf("send off-net: %d, %v; want ErrNoRoute", n, err)
	}
}

// TestBindBurst1000: a burst of 1000 datagrams sent in batches all arrive, and the
// link endpoint counts 1000 frames taken and none refused.
func TestBindBurst1000(t *testing.T) {
	const total = 1000
	p := newPair(t, 1)
	srv := listenBind(t, p.a, "[::]:1883")
	cli := listenBind(t, p.b, "[::]:40000")
	go echoBind(srv)
	exchange(t, cli, netip.AddrPortFrom(a4, 1883), "warm") // resolve both ways

	sink := listenBind(t, p.a, "[::]:1884")
	before := p.b.InterfaceStats()[0]
	got := make(chan map[uint32]int)
	go func() {
		seen := make(map[uint32]int)
		in := packets(BindBatchSize, 64)
		for len(seen) < total {
			sink.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := sink.ReceiveBatch(in)
			if err != nil {
				break
			}
			for _, q := range in[:n] {
				seen[binary.BigEndian.Uint32(q.Buf[:q.N])]++
			}
		}
		got <- seen
	}()
	dst := netip.AddrPortFrom(a4, 1884)
	bufs := make([][4]byte, total)
	out := make([]serve.Packet, 0, BindBatchSize)
	sent := 0
	for sent < total {
		out = out[:0]
		for i := sent; i < total && len(out) < BindBatchSize; i++ {
			binary.BigEndian.PutUint32(bufs[i][:], uint32(i))
			out = append(out, serve.Packet{Buf: bufs[i][:], Addr: dst})
		}
		n, err := cli.SendBatch(out)
		if err != nil {
			t.Fatalf("SendBatch after %d: %d of %d, %v", sent, n, len(out), err)
		}
		sent += n
	}
	seen := <-got
	st := p.b.InterfaceStats()[0]
	if len(seen) != total {
		t.Fatalf("%d of %d distinct datagrams arrived; link %+v; stats %+v", len(seen), total, p.link.Stats(), st)
	}
	if d := st.TxFrames - before.TxFrames; d < total || st.TxQueueFull != 0 || st.TxNICErrors != 0 {
		t.Fatalf("stats after burst %+v (before %+v)", st, before)
	}
	if rx := p.a.InterfaceStats()[0].RxFrames; rx < total {
		t.Fatalf("a received %d frames, want ≥ %d", rx, total)
	}
}

// TestBindTxBusyWaitsThenSends: a NIC whose ring is full for a while is retried
// within the bound, and the datagram arrives.
func TestBindTxBusyWaitsThenSends(t *testing.T) {
	p, gate := gatedPair(t, 50*time.Millisecond)
	cli := listenBind(t, p.a, "[::]:40000")
	go echoBind(listenBind(t, p.b, "[::]:1883"))
	dst := netip.AddrPortFrom(b4, 1883)
	exchange(t, cli, dst, "warm")

	const busy = 200
	before, calls := p.a.InterfaceStats()[0], gate.calls.Load()
	gate.busy.Store(busy)
	got := exchange(t, cli, dst, "after busy")
	if string(got.Buf[:got.N]) != "after busy" {
		t.Fatalf("echo %q", got.Buf[:got.N])
	}
	st := p.a.InterfaceStats()[0]
	if st.TxBusy-before.TxBusy != 1 || st.TxQueueFull != 0 || st.TxNICErrors != 0 || gate.calls.Load()-calls <= busy {
		t.Fatalf("busy %d times: stats %+v (before %+v), %d Transmit calls", busy, st, before, gate.calls.Load()-calls)
	}
}

// TestBindTxStuckCounted: a NIC whose ring stays full makes SendBatch report the
// datagram unsent with ErrTxQueueFull after the bound, and the link counts it:
// never a silent loss. When the ring frees, sending works again.
func TestBindTxStuckCounted(t *testing.T) {
	const wait = 20 * time.Millisecond
	p, gate := gatedPair(t, wait)
	cli := listenBind(t, p.a, "[::]:40000")
	go echoBind(listenBind(t, p.b, "[::]:1883"))
	dst := netip.AddrPortFrom(b4, 1883)
	exchange(t, cli, dst, "warm")

	gate.stuck.Store(true)
	start := time.Now()
	batch := []serve.Packet{{Buf: []byte("one"), Addr: dst}, {Buf: []byte("two"), Addr: dst}}
	n, err := cli.SendBatch(batch)
	took := time.Since(start)
	if n != 0 || !errors.Is(err, serve.ErrTxQueueFull) {
		t.Fatalf("SendBatch on a stuck NIC: %d, %v; want 0, ErrTxQueueFull", n, err)
	}
	if took < wait {
		t.Fatalf("gave up after %v, before the %v bound", took, wait)
	}
	st := p.a.InterfaceStats()[0]
	if st.TxQueueFull != 1 || st.TxBusy == 0 {
		t.Fatalf("stats %+v, want TxQueueFull 1", st)
	}
	gate.stuck.Store(false)
	if got := exchange(t, cli, dst, "free"); string(got.Buf[:got.N]) != "free" {
		t.Fatalf("echo %q", got.Buf[:got.N])
	}
}

// TestBindNICErrorReported: a frame the NIC refuses fails the write with ErrNIC and
// is counted, with the NIC's error kept.
func TestBindNICErrorReported(t *testing.T) {
	p, gate := gatedPair(t, 0)
	cli := listenBind(t, p.a, "[::]:40000")
	go echoBind(listenBind(t, p.b, "[::]:1883"))
	dst := netip.AddrPortFrom(b6, 1883)
	exchange(t, cli, dst, "warm")

	gate.broken.Store(true)
	n, err := cli.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: dst}})
	if n != 0 || !errors.Is(err, serve.ErrNIC) {
		t.Fatalf("SendBatch on a broken NIC: %d, %v; want 0, ErrNIC", n, err)
	}
	st := p.a.InterfaceStats()[0]
	if st.TxNICErrors != 1 || !errors.Is(st.LastTxError, errBroken) {
		t.Fatalf("stats %+v", st)
	}
	gate.broken.Store(false)
	exchange(t, cli, dst, "mended")
}

// TestBindTruncated: a datagram longer than the buffer is cut and flagged.
func TestBindTruncated(t *testing.T) {
	p := newPair(t, 1)
	srv := listenBind(t, p.a, "[::]:1883")
	cli := listenBind(t, p.b, "[::]:40000")
	go echoBind(srv)
	exchange(t, cli, netip.AddrPortFrom(a4, 1883), "warm")

	long := make([]byte, 100)
	for i := range long {
		long[i] = byte(i)
	}
	if n, err := cli.SendBatch([]serve.Packet{{Buf: long, Addr: netip.AddrPortFrom(a4, 1883)}}); n != 1 {
		t.Fatal(err)
	}
	in := []serve.Packet{{Buf: make([]byte, 10)}}
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := cli.ReceiveBatch(in)
	if err != nil || n != 1 {
		t.Fatalf("ReceiveBatch: %d, %v", n, err)
	}
	if in[0].N != 10 || !in[0].Trunc || string(in[0].Buf) != string(long[:10]) {
		t.Fatalf("got N %d trunc %v % x", in[0].N, in[0].Trunc, in[0].Buf)
	}
}

// TestBindDeadlineAndClose: a past deadline set from another goroutine interrupts
// a blocked ReceiveBatch with a timeout; a future one expires by itself; the zero
// Time clears it; Close interrupts with net.ErrClosed.
func TestBindDeadlineAndClose(t *testing.T) {
	p := newPair(t, 1)
	b, err := p.a.ListenBind(1883)
	if err != nil {
		t.Fatal(err)
	}
	in := packets(2, 64)
	receive := func() <-chan error {
		c := make(chan error, 1)
		go func() {
			_, err := b.ReceiveBatch(in)
			c <- err
		}()
		return c
	}
	wantTimeout := func(what string, c <-chan error) {
		t.Helper()
		select {
		case err := <-c:
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s: %v (%T), want a timeout", what, err, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReceiveBatch still blocked", what)
		}
	}

	c := receive()
	time.Sleep(20 * time.Millisecond)
	b.SetReadDeadline(time.Now().Add(-time.Second))
	wantTimeout("past deadline from another goroutine", c)

	b.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	wantTimeout("future deadline", receive())
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Fatalf("future deadline expired after %v", d)
	}

	// Moved later, then cleared: the earlier timer must not fire.
	b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	b.SetReadDeadline(time.Time{})
	c = receive()
	select {
	case err := <-c:
		t.Fatalf("ReceiveBatch with no deadline returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt ReceiveBatch")
	}
	if _, err := b.ReceiveBatch(in); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReceiveBatch after Close: %v", err)
	}
	if n, err := b.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: netip.AddrPortFrom(b4, 1)}}); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBatch after Close: %d, %v", n, err)
	}
	if !errors.Is(b.Close(), net.ErrClosed) {
		t.Fatal("second Close reports no error")
	}
}

// TestBindTryReceive: TryReceiveBatch returns 0 and nil when nothing waits, and
// every waiting datagram (up to the batch) when some do.
func TestBindTryReceive(t *testing.T) {
	p := newPair(t, 1)
	srv := listenBind(t, p.a, "[::]:1883")
	cli := listenBind(t, p.b, "[::]:40000")
	in := packets(8, 64)
	if n, err := srv.TryReceiveBatch(in); n != 0 || err != nil {
		t.Fatalf("TryReceiveBatch on an empty socket: %d, %v", n, err)
	}
	dst := netip.AddrPortFrom(a6, 1883)
	// Resolve the neighbour first: datagrams written while NDP is pending wait in
	// gVisor's queue, which it flushes after the entry is usable, so later datagrams
	// can overtake them.
	exchangeTo(t, cli, srv, dst)
	out := make([]serve.Packet, 5)
	for i := range out {
		out[i] = serve.Packet{Buf: []byte{byte(i)}, Addr: dst}
	}
	if n, err := cli.SendBatch(out); n != len(out) {
		t.Fatal(err)
	}
	got := 0
	for deadline := time.Now().Add(5 * time.Second); got < len(out) && time.Now().Before(deadline); {
		n, err := srv.TryReceiveBatch(in[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
		time.Sleep(time.Millisecond)
	}
	for i := range got {
		if in[i].N != 1 || in[i].Buf[0] != byte(i) || in[i].Addr != netip.AddrPortFrom(b6, 40000) {
			t.Fatalf("datagram %d: % x from %v", i, in[i].Buf[:in[i].N], in[i].Addr)
		}
	}
	if got != len(out) {
		t.Fatalf("%d of %d datagrams", got, len(out))
	}
}
