//go:build linux

package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/musqratt/musqratt/net/serve"
)

// TestMmsghdrLayout checks the declared mmsghdr against the kernel's: msg_len right
// after the msghdr, the whole padded to pointer alignment.
func TestMmsghdrLayout(t *testing.T) {
	var m mmsghdr
	if off := unsafe.Offsetof(m.len); off != unsafe.Sizeof(m.hdr) {
		t.Errorf("msg_len at %d, msghdr is %d octets", off, unsafe.Sizeof(m.hdr))
	}
	want := uintptr(64)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = 32
	}
	if got := unsafe.Sizeof(m); got != want {
		t.Errorf("sizeof(mmsghdr) = %d, want %d", got, want)
	}
}

// TestBindBatchCap: more packets than BatchSize are never filled in one call.
func TestBindBatchCap(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{}, 4)
	tx, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	out := make([]serve.Packet, 10)
	for i := range out {
		out[i] = serve.Packet{Buf: []byte(strconv.Itoa(i)), Addr: portOn(rc, "127.0.0.1")}
	}
	if n, err := tx.SendBatch(out); n != len(out) || err != nil {
		t.Fatalf("SendBatch = %d, %v", n, err)
	}
	got, batches := receive(t, rx, packets(10, 16), len(out)) // receive fails on n > BatchSize
	for i, g := range got {
		if g.data != strconv.Itoa(i) {
			t.Errorf("datagram %d: %q", i, g.data)
		}
	}
	if len(batches) < 3 {
		t.Errorf("10 datagrams in batches of at most 4: %v", batches)
	}
}

// TestTryReceiveBatchFinds: a waiting burst is picked up without blocking.
func TestTryReceiveBatchFinds(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{}, 0)
	tx, tc := listenBind(t, "127.0.0.1:0", Options{}, 0)
	out := []serve.Packet{{Buf: []byte("a")}, {Buf: []byte("b")}, {Buf: []byte("c")}}
	for i := range out {
		out[i].Addr = portOn(rc, "127.0.0.1")
	}
	if n, err := tx.SendBatch(out); n != 3 || err != nil {
		t.Fatalf("SendBatch = %d, %v", n, err)
	}
	pkts := packets(8, 16)
	var got []string
	for deadline := time.Now().Add(5 * time.Second); len(got) < 3 && time.Now().Before(deadline); {
		n, err := rx.TryReceiveBatch(pkts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts[:n] {
			if p.Addr != localOf(tc) {
				t.Errorf("from %v, want %v", p.Addr, localOf(tc))
			}
			got = append(got, string(p.Buf[:p.N]))
		}
	}
	if fmt.Sprint(got) != "[a b c]" {
		t.Errorf("polled %q", got)
	}
}

// TestBindSendKernelNoRoute: a route error from the kernel is ErrNoRoute at the
// index of the datagram it refused. An IPv6-only socket made to think it reaches
// IPv4 offers an IPv4-mapped destination, which Linux refuses with ENETUNREACH.
func TestBindSendKernelNoRoute(t *testing.T) {
	hasIPv6Bind(t)
	tx, _ := listenBind(t, "[::]:0", Options{IPv6Only: true}, 0)
	rx, rc := listenBind(t, "[::1]:0", Options{}, 0)
	if tx.Reaches(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("an IPV6_V6ONLY socket reaches IPv4")
	}
	tx.reaches4 = true
	dst := portOn(rc, "::1")
	out := []serve.Packet{
		{Buf: []byte("one"), Addr: dst},
		{Buf: []byte("mapped"), Addr: netip.MustParseAddrPort("127.0.0.1:9")},
		{Buf: []byte("three"), Addr: dst},
	}
	n, err := tx.SendBatch(out)
	if n != 1 || !errors.Is(err, serve.ErrNoRoute) || !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("SendBatch = %d, %v; want 1, ErrNoRoute (ENETUNREACH)", n, err)
	}
	if n, err := tx.SendBatch(out[2:]); n != 1 || err != nil {
		t.Fatalf("SendBatch of the rest = %d, %v", n, err)
	}
	got, _ := receive(t, rx, packets(4, 16), 2)
	if got[0].data != "one" || got[1].data != "three" {
		t.Errorf("received %+v", got)
	}
}

// realSendmmsg is the system call, for fakes to pass through to.
var realSendmmsg = sendmmsg

// sendmmsgFunc is the type of the system call's variable.
type sendmmsgFunc = func(fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno)

// fakeSendmmsg replaces the system call with f until the test ends; f may call real.
func fakeSendmmsg(t *testing.T, f func(real sendmmsgFunc, fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno)) {
	sendmmsg = func(fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno) {
		return f(realSendmmsg, fd, msgs, vlen)
	}
	t.Cleanup(func() { sendmmsg = realSendmmsg })
}

// TestBindPartialSends: when the kernel takes part of a batch, the rest is offered
// again from where it stopped, so every datagram leaves once and in order.
func TestBindPartialSends(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, 0)
	tx, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	var calls []int
	fakeSendmmsg(t, func(real sendmmsgFunc, fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno) {
		calls = append(calls, vlen)
		return real(fd, msgs, min(vlen, 3))
	})
	out := make([]serve.Packet, 40)
	for i := range out {
		out[i] = serve.Packet{Buf: fmt.Appendf(nil, "p%02d", i), Addr: portOn(rc, "127.0.0.1")}
	}
	if n, err := tx.SendBatch(out); n != len(out) || err != nil {
		t.Fatalf("SendBatch = %d, %v", n, err)
	}
	got, _ := receive(t, rx, packets(32, 16), len(out))
	for i, g := range got {
		if want := fmt.Sprintf("p%02d", i); g.data != want {
			t.Fatalf("datagram %d: %q, want %q", i, g.data, want)
		}
	}
	// 32 then 8 prepared; the kernel takes 3 at a time: offers of 32, 29, …, 2 and 8, 5, 2.
	want := []int{32, 29, 26, 23, 20, 17, 14, 11, 8, 5, 2, 8, 5, 2}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("offers %v, want %v", calls, want)
	}
}

// TestBindTxQueueFull: a full send buffer is waited out (bounded by sendWait) and
// only then a drop with ErrTxQueueFull; the socket's write deadline is left clear.
func TestBindTxQueueFull(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, 0)
	tx, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	dst := portOn(rc, "127.0.0.1")
	batch := func(names ...string) []serve.Packet {
		var out []serve.Packet
		for _, n := range names {
			out = append(out, serve.Packet{Buf: []byte(n), Addr: dst})
		}
		return out
	}

	for _, errno := range []unix.Errno{unix.EAGAIN, unix.ENOBUFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			// Room comes after one refusal: everything leaves, nothing is dropped.
			refusals := 1
			fakeSendmmsg(t, func(real sendmmsgFunc, fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno) {
				if refusals > 0 {
					refusals--
					return 0, errno
				}
				return real(fd, msgs, vlen)
			})
			if n, err := tx.SendBatch(batch("a", "b")); n != 2 || err != nil {
				t.Fatalf("SendBatch after one refusal = %d, %v", n, err)
			}

			// The kernel takes one datagram, then stays full: the second is dropped after
			// the wait, and the caller may go on with the third.
			taken := 0
			fakeSendmmsg(t, func(real sendmmsgFunc, fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno) {
				if taken > 0 {
					return 0, errno
				}
				taken++
				return real(fd, msgs, 1)
			})
			start := time.Now()
			n, err := tx.SendBatch(batch("c", "stuck", "d"))
			waited := time.Since(start)
			if n != 1 || !errors.Is(err, serve.ErrTxQueueFull) || !errors.Is(err, errno) {
				t.Fatalf("SendBatch into a full queue = %d, %v; want 1, ErrTxQueueFull (%v)", n, err, errno)
			}
			if waited < sendWait || waited > time.Second {
				t.Errorf("gave up after %v, want about %v", waited, sendWait)
			}
			sendmmsg = realSendmmsg
			if n, err := tx.SendBatch(batch("d")); n != 1 || err != nil {
				t.Fatalf("SendBatch once room is back = %d, %v (write deadline left set?)", n, err)
			}
			got, _ := receive(t, rx, packets(8, 16), 4)
			if got[0].data+got[1].data+got[2].data+got[3].data != "abcd" {
				t.Errorf("received %+v", got)
			}
		})
	}
}

// TestBindLinkLocal: a link-local peer's scope id comes as a numeric zone, and an
// answer to it, by number or by interface name, reaches it.
func TestBindLinkLocal(t *testing.T) {
	hasIPv6Bind(t)
	ifi, ll := linkLocal(t)
	rx, rc := listenBind(t, "[::]:0", Options{}, 0)
	cl, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ll.WithZone(ifi.Name), 0)))
	if err != nil {
		t.Skipf("bind %v%%%s: %v", ll, ifi.Name, err)
	}
	defer cl.Close()
	to := netip.AddrPortFrom(ll.WithZone(ifi.Name), portOn(rc, "::").Port())
	if _, err := cl.WriteToUDPAddrPort([]byte("hi"), to); err != nil {
		t.Skipf("send to %v: %v", to, err)
	}
	got, _ := receive(t, rx, packets(4, 16), 1)
	want := netip.AddrPortFrom(ll.WithZone(strconv.Itoa(ifi.Index)), localOf(cl).Port())
	if got[0].from != want || got[0].data != "hi" {
		t.Fatalf("got %+v, want from %v", got[0], want)
	}
	byName := netip.AddrPortFrom(ll.WithZone(ifi.Name), want.Port())
	for _, a := range []netip.AddrPort{want, byName, want} {
		if n, err := rx.SendBatch([]serve.Packet{{Buf: []byte("re " + a.Addr().Zone()), Addr: a}}); n != 1 || err != nil {
			t.Fatalf("SendBatch to %v = %d, %v", a, n, err)
		}
		buf := make([]byte, 32)
		cl.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cl.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "re "+a.Addr().Zone() {
			t.Fatalf("reply to %v: %q, %v", a, buf[:n], err)
		}
	}
}

// linkLocal finds an interface that is up with an IPv6 link-local address.
func linkLocal(t *testing.T) (*net.Interface, netip.Addr) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					return ifi, ip
				}
			}
		}
	}
	t.Skip("no interface with an IPv6 link-local address")
	return nil, netip.Addr{}
}

// TestBindAllocs: a steady-state batch allocates nothing, sent, received or polled.
func TestBindAllocs(t *testing.T) {
	rx, rc := listenBind(t, "127.0.0.1:0", Options{ReceiveBuffer: 1 << 20}, 0)
	tx, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	sink, _ := listenBind(t, "127.0.0.1:0", Options{}, 0)
	const k = 32
	out := make([]serve.Packet, k)
	for i := range out {
		out[i] = serve.Packet{Buf: []byte("a datagram of some length"), Addr: portOn(rc, "127.0.0.1")}
	}
	toSink := make([]serve.Packet, k)
	for i := range toSink {
		toSink[i] = serve.Packet{Buf: out[i].Buf, Addr: portOn(sink.c, "127.0.0.1")}
	}
	in := packets(k, 64)
	var failed error
	fail := func(err error) {
		if failed == nil {
			failed = err
		}
	}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"send", func() {
			if n, err := tx.SendBatch(toSink); n != k || err != nil { // the sink is never read: the kernel drops
				fail(fmt.Errorf("SendBatch = %d, %v", n, err))
			}
		}},
		{"send+receive", func() {
			if n, err := tx.SendBatch(out); n != k || err != nil {
				fail(fmt.Errorf("SendBatch = %d, %v", n, err))
			}
			for got := 0; got < k; {
				n, err := rx.ReceiveBatch(in[:k-got])
				if err != nil {
					fail(err)
					return
				}
				got += n
			}
		}},
		{"try-receive empty", func() {
			if n, err := rx.TryReceiveBatch(in); n != 0 || err != nil {
				fail(fmt.Errorf("TryReceiveBatch = %d, %v", n, err))
			}
		}},
		{"send+try-receive", func() {
			if n, err := tx.SendBatch(out); n != k || err != nil {
				fail(fmt.Errorf("SendBatch = %d, %v", n, err))
			}
			for got, tries := 0, 0; got < k; tries++ {
				n, err := rx.TryReceiveBatch(in[:k-got])
				if err != nil || tries > 1e6 {
					fail(fmt.Errorf("TryReceiveBatch after %d tries: %d of %d, %v", tries, got, k, err))
					return
				}
				got += n
			}
		}},
	} {
		rx.SetReadDeadline(time.Now().Add(10 * time.Second))
		allocs := testing.AllocsPerRun(100, tc.f)
		if failed != nil {
			t.Fatalf("%s: %v", tc.name, failed)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per batch of %d, want 0", tc.name, allocs, k)
		}
	}
}
