package udp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// listenBind opens addr with Listen and wraps it in a Bind of batch; both are closed
// when the test ends.
func listenBind(t testing.TB, addr string, opts Options, batch int) (*Bind, *net.UDPConn) {
	t.Helper()
	c, err := Listen(context.Background(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, err := NewBind(c, batch)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

// packets makes n receive packets with buffers of size octets.
func packets(n, size int) []serve.Packet {
	pkts := make([]serve.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

// portOn is the AddrPort of c's port at address a ("127.0.0.1", "::1").
func portOn(c *net.UDPConn, a string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(a), uint16(c.LocalAddr().(*net.UDPAddr).Port))
}

// localOf is c's local address as a peer sees it.
func localOf(c *net.UDPConn) netip.AddrPort {
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// received is one datagram as a test keeps it.
type received struct {
	from  netip.AddrPort
	data  string
	n     int
	trunc bool
}

// receive calls ReceiveBatch into pkts until want datagrams have come, failing the
// test if they do not within a few seconds. It returns them and the batch sizes.
func receive(t testing.TB, b *Bind, pkts []serve.Packet, want int) (got []received, batches []int) {
	t.Helper()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer b.SetReadDeadline(time.Time{})
	for len(got) < want {
		n, err := b.ReceiveBatch(pkts)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), want, err)
		}
		if n < 1 || n > len(pkts) || n > b.BatchSize() {
			t.Fatalf("ReceiveBatch = %d with %d packets, batch %d", n, len(pkts), b.BatchSize())
		}
		batches = append(batches, n)
		for _, p := range pkts[:n] {
			got = append(got, received{p.Addr, string(p.Buf[:p.N]), p.N, p.Trunc})
		}
	}
	return got, batches
}

func hasIPv6Bind(t *testing.T) {
	t.Helper()
	if !hasIPv6(t) {
		t.Skip("no IPv6 on this host")
	}
}

func TestBindFamilies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		listen  string
		opts    Options
		ipv6    bool
		clients []string // client address, also where it sends (the Bind's port there)
		reach4  bool
		reach6  bool
	}{
		{"ipv4", "127.0.0.1:0", Options{}, false, []string{"127.0.0.1"}, true, false},
		{"ipv6", "[::1]:0", Options{}, true, []string{"::1"}, false, true},
		{"dual-stack", "[::]:0", Options{}, true, []string{"127.0.0.1", "::1"}, true, true},
		{"ipv6-only wildcard", "[::]:0", Options{IPv6Only: true}, true, []string{"::1"}, runtime.GOOS != "linux", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ipv6 {
				hasIPv6Bind(t)
			}
			b, c := listenBind(t, tc.listen, tc.opts, 8)
			if got := b.String(); got != c.LocalAddr().String() {
				t.Errorf("String() = %q, want %q", got, c.LocalAddr())
			}
			v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
			if b.Reaches(v4) != tc.reach4 || b.Reaches(v6) != tc.reach6 {
				t.Errorf("Reaches(%v) = %v, Reaches(%v) = %v; want %v, %v", v4, b.Reaches(v4), v6, b.Reaches(v6), tc.reach4, tc.reach6)
			}
			if b.Reaches(netip.MustParseAddr("::ffff:192.0.2.1")) != tc.reach4 {
				t.Errorf("an IPv4-mapped address is not treated as IPv4")
			}
			for _, ca := range tc.clients {
				cl, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ca), 0)))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				msg := "hello from " + ca
				if _, err := cl.WriteToUDPAddrPort([]byte(msg), portOn(c, ca)); err != nil {
					t.Fatal(err)
				}
				got, _ := receive(t, b, packets(4, 64), 1)
				if got[0].data != msg || got[0].from != localOf(cl) || got[0].trunc {
					t.Fatalf("got %+v, want %q from %v", got[0], msg, localOf(cl))
				}
				// Answer the source as reported: an IPv4 peer of the dual-stack socket
				// goes out as IPv4-mapped IPv6.
				if n, err := b.SendBatch([]serve.Packet{{Buf: []byte("re: " + msg), Addr: got[0].from}}); n != 1 || err != nil {
					t.Fatalf("SendBatch to %v = %d, %v", got[0].from, n, err)
				}
				buf := make([]byte, 64)
				cl.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, err := cl.ReadFromUDPAddrPort(buf)
				if err != nil || string(buf[:n]) != "re: "+msg {
					t.Fatalf("reply: %q, %v", buf[:n], err)
				}
				if from.Addr().Unmap() != netip.MustParseAddr(ca) || from.Port() != c.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
					t.Errorf("reply came from %v", from)
				}
			}
		})
	}
}

func TestNewBindBatchSize(t *testing.T) {
	c, err := Listen(context.Background(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct{ ask, want int }{{0, DefaultBatch}, {-3, DefaultBatch}, {1, 1}, {5, 5}, {MaxBatch, MaxBatch}, {1000, MaxBatch}} {
		b, err := NewBind(c, tc.ask)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.want
		if runtime.GOOS != "linux" {
			want = 1
		}
		if got := b.BatchSize(); got != want {
			t.Errorf("NewBind(c, %d).BatchSize() = %d, want %d", tc.ask, got, want)
		}
	}
	if _, err := NewBind(nil, 0); err == nil {
		t.Error("NewBind(nil): no error")
	}
}

// TestBindBurst sends 200 datagrams in one SendBatch (several system calls of
// BatchSize) and receives them in batches, in order, with the right source.
func TestBindBurst(t *testing.T) {
	const count = 200
	rx, rc := listenBind(t, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, 0)
	tx, tc := listenBind(t, "127.0.0.1:0", Options{}, 0)
	out := make([]serve.Packet, count)
	for i := range out {
		out[i] = serve.Packet{Buf: fmt.Appendf(nil, "datagram %03d", i), Addr: portOn(rc, "127.0.0.1")}
	}
	if n, err := tx.SendBatch(out); n != count || err != nil {
		t.Fatalf("SendBatch = %d, %v", n, err)
	}
	got, batches := receive(t, rx, packets(rx.BatchSize(), 64), count)
	for i, g := range got {
		if want := fmt.Sprintf("datagram %03d", i); g.data != want || g.from != localOf(tc) || g.trunc {
			t.Fatalf("datagram %d: %+v, want %q from %v", i, g, want, localOf(tc))
		}
	}
	if runtime.GOOS == "linux" && len(batches) >= count/2 {
		t.Errorf("%d datagrams, all queued before the first receive, took %d batches: %v", count, len(batches), batches)
	}
	t.Logf("batches: %v", batches)
}

// TestBindTruncation: an oversized datagram is flagged (and one that fills the
// buffer exactly, which may have been cut), and its neighbours in the same batch are
// intact.
func TestBindTruncation(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{}, 0)
	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const size = 64
	sends := [][]byte{
		[]byte("first"),
		bytes.Repeat([]byte("x"), 3*size), // oversized
		[]byte("third"),
		bytes.Repeat([]byte("y"), size), // fills the buffer
		[]byte("fifth"),
	}
	for _, s := range sends {
		if _, err := cl.WriteToUDPAddrPort(s, portOn(rc, "127.0.0.1")); err != nil {
			t.Fatal(err)
		}
	}
	got, batches := receive(t, rx, packets(8, size), len(sends))
	for i, s := range sends {
		want := received{localOf(cl), string(s[:min(len(s), size)]), min(len(s), size), len(s) >= size}
		if got[i] != want {
			t.Errorf("datagram %d: got %+v, want %+v", i, got[i], want)
		}
	}
	t.Logf("batches: %v", batches)
}

// TestBindReadDeadline: a past read deadline interrupts a blocked ReceiveBatch with
// a timeout, and the Bind works again once the deadline is cleared.
func TestBindReadDeadline(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{}, 0)
	pkts := packets(4, 64)
	done := make(chan error, 1)
	go func() {
		_, err := rx.ReceiveBatch(pkts)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block in the poller
	select {
	case err := <-done:
		t.Fatalf("ReceiveBatch returned with nothing sent: %v", err)
	default:
	}
	if err := rx.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted ReceiveBatch: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a past read deadline did not interrupt ReceiveBatch")
	}
	if _, err := rx.TryReceiveBatch(pkts); runtime.GOOS == "linux" && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("TryReceiveBatch past the deadline: %v, want a timeout", err)
	}

	rx.SetReadDeadline(time.Time{})
	cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.WriteToUDPAddrPort([]byte("again"), portOn(rc, "127.0.0.1"))
	if got, _ := receive(t, rx, pkts, 1); got[0].data != "again" {
		t.Errorf("after the deadline was cleared: %+v", got[0])
	}
}

// TestBindClosed: closing the socket interrupts a blocked ReceiveBatch, and every
// call after it fails, with net.ErrClosed.
func TestBindClosed(t *testing.T) {
	c, err := Listen(context.Background(), "127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBind(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkts := packets(4, 64)
	done := make(chan error, 1)
	go func() {
		_, err := b.ReceiveBatch(pkts)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReceiveBatch on close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt ReceiveBatch")
	}
	if _, err := b.ReceiveBatch(pkts); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReceiveBatch after close: %v", err)
	}
	if _, err := b.TryReceiveBatch(pkts); runtime.GOOS == "linux" && !errors.Is(err, net.ErrClosed) {
		t.Errorf("TryReceiveBatch after close: %v", err)
	}
	to := netip.MustParseAddrPort("127.0.0.1:9")
	if n, err := b.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: to}}); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("SendBatch after close: %d, %v", n, err)
	}
	if _, err := NewBind(c, 0); runtime.GOOS == "linux" && !errors.Is(err, net.ErrClosed) {
		t.Errorf("NewBind on a closed socket: %v", err)
	}
}

// TestBindSendUnreachableFamily: a datagram to a family the socket does not serve
// stops the batch at its index with ErrNoRoute, and the rest can still be sent.
func TestBindSendUnreachableFamily(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, 0)
	tx, _ := listenBind(t, "127.0.0.1:0", Options{}, 8) // batch 8: the failure is past the first system call
	dst, v6 := portOn(rc, "127.0.0.1"), netip.MustParseAddrPort("[2001:db8::1]:1883")
	var out []serve.Packet
	for i := range 12 {
		out = append(out, serve.Packet{Buf: fmt.Appendf(nil, "d%d", i), Addr: dst})
	}
	out[10].Addr = v6
	out = append(out, serve.Packet{Buf: []byte("zero"), Addr: netip.AddrPort{}})

	n, err := tx.SendBatch(out)
	if n != 10 || !errors.Is(err, serve.ErrNoRoute) || !strings.Contains(err.Error(), v6.String()) {
		t.Fatalf("SendBatch = %d, %v; want 10 and ErrNoRoute naming %v", n, err, v6)
	}
	n, err = tx.SendBatch(out[11:])
	if n != 1 || !errors.Is(err, serve.ErrNoRoute) {
		t.Fatalf("SendBatch of the rest = %d, %v; want 1 and ErrNoRoute for the zero address", n, err)
	}
	got, _ := receive(t, rx, packets(16, 64), 11)
	for i, g := range got {
		want := fmt.Sprintf("d%d", i)
		if i == 10 {
			want = "d11"
		}
		if g.data != want {
			t.Errorf("datagram %d: %q, want %q", i, g.data, want)
		}
	}

	if hasIPv6(t) {
		tx6, _ := listenBind(t, "[::1]:0", Options{}, 0)
		n, err := tx6.SendBatch([]serve.Packet{{Buf: []byte("x"), Addr: dst}})
		if n != 0 || !errors.Is(err, serve.ErrNoRoute) {
			t.Errorf("IPv4 from an IPv6 socket: %d, %v", n, err)
		}
	}
}

func TestTryReceiveBatchEmpty(t *testing.T) {
	rx, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	for range 3 {
		if n, err := rx.TryReceiveBatch(packets(4, 64)); n != 0 || err != nil {
			t.Fatalf("TryReceiveBatch with nothing waiting = %d, %v", n, err)
		}
	}
	if n, err := rx.ReceiveBatch(nil); n != 0 || err != nil {
		t.Errorf("ReceiveBatch(nil) = %d, %v", n, err)
	}
}

func TestSendErrorReasons(t *testing.T) {
	to := netip.MustParseAddrPort("192.0.2.1:1883")
	for _, tc := range []struct {
		errno  error
		reason error
	}{
		{syscall.EAGAIN, serve.ErrTxQueueFull},
		{syscall.ENOBUFS, serve.ErrTxQueueFull},
		{syscall.EHOSTUNREACH, serve.ErrNoRoute},
		{syscall.ENETUNREACH, serve.ErrNoRoute},
		{syscall.EADDRNOTAVAIL, serve.ErrNoRoute},
		{syscall.EMSGSIZE, nil},
		{syscall.EPERM, nil},
	} {
		err := sendError(to, "127.0.0.1:5", tc.errno)
		if !errors.Is(err, tc.errno) {
			t.Errorf("%v: error %v does not wrap the errno", tc.errno, err)
		}
		for _, r := range []error{serve.ErrTxQueueFull, serve.ErrNoRoute, serve.ErrNIC} {
			if errors.Is(err, r) != (r == tc.reason) {
				t.Errorf("%v: errors.Is(%v, %v) = %v", tc.errno, err, r, !(r == tc.reason))
			}
		}
		if !strings.Contains(err.Error(), to.String()) {
			t.Errorf("%v: error %q does not name the destination", tc.errno, err)
		}
	}
}
