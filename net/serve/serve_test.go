package serve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// fakeEngine echoes every datagram back to its sender (prefixed by nothing) unless
// onReceive says otherwise, and emits onTick's datagrams when its deadline passes.
type fakeEngine struct {
	mu        sync.Mutex
	deadline  time.Time
	received  [][]byte
	marks     []uint64
	ticks     int
	onReceive func(in broker.Datagram, out []broker.Datagram) []broker.Datagram
	onTick    func(now time.Time, out []broker.Datagram) []broker.Datagram
}

func (e *fakeEngine) Receive(now time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.received = append(e.received, bytes.Clone(in.B))
	e.marks = append(e.marks, in.Mark)
	if e.onReceive != nil {
		return e.onReceive(in, out)
	}
	return append(out, in)
}

func (e *fakeEngine) Tick(now time.Time, out []broker.Datagram) []broker.Datagram {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ticks++
	if e.onTick != nil {
		return e.onTick(now, out)
	}
	e.deadline = time.Time{}
	return out
}

func (e *fakeEngine) Deadline() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.deadline
}

func (e *fakeEngine) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.received)
}

func (e *fakeEngine) tickCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ticks
}

func listenUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// eventually polls cond for up to a second: the driver counts a datagram after writing
// it, so a test may see the reply before the count.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: condition not met within 1s", what)
			return
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs s until the test ends; it fails the test if Run does not return nil
// within a second of the cancellation.
func start(t testing.TB, s *Server) (cancel func()) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancelCtx()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// exchange sends b from client to server and returns the reply and its source.
func exchange(t testing.TB, client *net.UDPConn, to netip.AddrPort, b []byte) ([]byte, netip.AddrPort) {
	t.Helper()
	if _, err := client.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
	return readReply(t, client)
}

func readReply(t testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 70000)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return buf[:n], from
}

func expectNothing(t testing.TB, c *net.UDPConn, within time.Duration) {
	t.Helper()
	buf := make([]byte, 70000)
	c.SetReadDeadline(time.Now().Add(within))
	if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("unexpected datagram %q from %v", buf[:n], from)
	}
}

func TestEchoOverUDP(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	var observed atomic.Int64
	var badObs atomic.Int64
	s := New(eng, Options{Logger: quietLogger(), Observe: func(mark, sent uint64) {
		observed.Add(1)
		if mark == 0 || sent < mark {
			badObs.Add(1)
		}
	}}, srv)
	start(t, s)
	for i := range 3 {
		msg := []byte{byte('a' + i), 'x'}
		got, from := exchange(t, client, addrOf(srv), msg)
		if !bytes.Equal(got, msg) || from != addrOf(srv) {
			t.Fatalf("reply %q from %v, want %q from %v", got, from, msg, addrOf(srv))
		}
	}
	eventually(t, "observe", func() bool { return observed.Load() == 3 })
	if badObs.Load() != 0 {
		t.Errorf("Observe called with %d bad stamps", badObs.Load())
	}
	eventually(t, "stats", func() bool { st := s.Stats(); return st.Received == 3 && st.Sent == 3 })
	if st := s.Stats(); st.WriteErrors != 0 || st.ReadErrors != 0 {
		t.Errorf("stats %+v", st)
	}
	for i, m := range eng.marks {
		if m == 0 {
			t.Errorf("datagram %d has no mark", i)
		}
	}
}

// hidden hides the *net.UDPConn behind the PacketConn interface, so the generic path
// (net.Addr conversion) is exercised.
type hidden struct{ net.PacketConn }

func TestEchoOverGenericPacketConn(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			srv := listenUDP(t, addr)
			client := listenUDP(t, addr)
			s := New(&fakeEngine{}, Options{Logger: quietLogger(), MaxDatagram: 10}, hidden{srv})
			start(t, s)
			got, from := exchange(t, client, addrOf(srv), []byte("hello"))
			if string(got) != "hello" || from != addrOf(srv) {
				t.Fatalf("reply %q from %v", got, from)
			}
			// Too long for MaxDatagram: counted and dropped, then service goes on.
			client.WriteToUDPAddrPort([]byte("0123456789ab"), addrOf(srv))
			got, _ = exchange(t, client, addrOf(srv), []byte("again"))
			if string(got) != "again" {
				t.Fatalf("reply %q", got)
			}
			if st := s.Stats(); st.Oversized != 1 || st.Received != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestOversizedIsTruncatedAndDropped(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	eng := &fakeEngine{}
	s := New(eng, Options{Logger: logger, MaxDatagram: 100}, srv)
	start(t, s)
	for _, n := range []int{101, 1000, 60000} {
		if _, err := client.WriteToUDPAddrPort(make([]byte, n), addrOf(srv)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := exchange(t, client, addrOf(srv), make([]byte, 100)) // exactly the maximum
	if len(got) != 100 {
		t.Fatalf("reply of %d octets", len(got))
	}
	if st := s.Stats(); st.Oversized != 3 || st.Received != 1 {
		t.Errorf("stats %+v", st)
	}
	if eng.count() != 1 {
		t.Errorf("engine saw %d datagrams, want 1", eng.count())
	}
	mu.Lock()
	defer mu.Unlock()
	if c := strings.Count(logs.String(), "oversized datagram dropped"); c != 1 {
		t.Errorf("%d log lines for oversized datagrams, want 1 (rate-limited):\n%s", c, logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestTickAtDeadline(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	var peer netip.AddrPort
	eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
		peer = in.Addr
		eng.deadline = time.Now().Add(30 * time.Millisecond)
		return out // no immediate reply
	}
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
		if now.Before(eng.deadline) {
			return out
		}
		eng.deadline = time.Time{}
		return append(out, broker.Datagram{Addr: peer, B: []byte("timer"), Mark: 7})
	}
	s := New(eng, Options{Logger: quietLogger()}, srv)
	start(t, s)
	t0 := time.Now()
	got, _ := exchange(t, client, addrOf(srv), []byte("arm"))
	if string(got) != "timer" {
		t.Fatalf("got %q", got)
	}
	if d := time.Since(t0); d < 30*time.Millisecond {
		t.Errorf("timer fired after %v, before its 30ms deadline", d)
	}
	expectNothing(t, client, 50*time.Millisecond)
}

// Under a steady stream of datagrams the read deadline never expires; the timers must
// run anyway.
func TestTickNotStarvedByTraffic(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	next := time.Now()
	eng.deadline = next
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
		next = next.Add(5 * time.Millisecond)
		eng.deadline = next
		return out
	}
	s := New(eng, Options{Logger: quietLogger()}, srv)
	start(t, s)
	t0 := time.Now()
	for time.Since(t0) < 100*time.Millisecond {
		exchange(t, client, addrOf(srv), []byte("x"))
	}
	if n := eng.tickCount(); n < 10 {
		t.Errorf("%d ticks in 100ms with a 5ms period", n)
	}
}

func TestBroadcast(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	// Two "broadcast" listeners on loopback stand in for 255.255.255.255 (tests send
	// nothing off this machine); the IPv6 one is unreachable from an IPv4 socket and
	// must be skipped without a write error.
	l1 := listenUDP(t, "127.0.0.1:0")
	l2 := listenUDP(t, "127.0.0.2:0")
	eng := &fakeEngine{deadline: time.Unix(0, 1)}
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
		eng.deadline = time.Time{}
		return append(out, broker.Datagram{B: []byte("advertise")})
	}
	s := New(eng, Options{Logger: quietLogger(), Broadcast: []netip.AddrPort{
		addrOf(l1), addrOf(l2), netip.MustParseAddrPort("[::1]:9"),
	}}, srv)
	start(t, s)
	for _, l := range []*net.UDPConn{l1, l2} {
		got, from := readReply(t, l)
		if string(got) != "advertise" || from != addrOf(srv) {
			t.Errorf("%v got %q from %v", addrOf(l), got, from)
		}
	}
	eventually(t, "stats", func() bool { return s.Stats().Broadcasts == 2 })
	if st := s.Stats(); st.WriteErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestWriteErrorIsNotFatal(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
		// An IPv6 destination cannot be written on an IPv4 socket.
		out = append(out, broker.Datagram{Addr: netip.MustParseAddrPort("[::1]:9"), B: []byte("x")})
		return append(out, in)
	}
	s := New(eng, Options{Logger: quietLogger()}, srv)
	start(t, s)
	for range 3 {
		exchange(t, client, addrOf(srv), []byte("ok"))
	}
	eventually(t, "stats", func() bool { st := s.Stats(); return st.WriteErrors == 3 && st.Sent == 3 })
}

func TestCancelReturnsPromptly(t *testing.T) {
	for _, n := range []int{1, 2} {
		srvs := []net.PacketConn{}
		for range n {
			srvs = append(srvs, listenUDP(t, "127.0.0.1:0"))
		}
		// A far deadline: Run must not wait for it.
		eng := &fakeEngine{deadline: time.Now().Add(time.Hour)}
		s := New(eng, Options{Logger: quietLogger()}, srvs...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%d conns: Run: %v", n, err)
			}
			if d := time.Since(t0); d > 500*time.Millisecond {
				t.Errorf("%d conns: Run took %v to return", n, d)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%d conns: Run did not return after cancel", n)
		}
	}
}

func TestAlreadyCancelled(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(&fakeEngine{}, Options{}, srv).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := New(&fakeEngine{}, Options{}).Run(ctx); err != ErrNoConn {
		t.Fatalf("no conns: %v", err)
	}
}

func TestClosedConnIsAnError(t *testing.T) {
	for _, n := range []int{1, 2} {
		var srvs []net.PacketConn
		for range n {
			srvs = append(srvs, listenUDP(t, "127.0.0.1:0"))
		}
		s := New(&fakeEngine{}, Options{Logger: quietLogger()}, srvs...)
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background()) }()
		time.Sleep(20 * time.Millisecond)
		srvs[0].Close()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("%d conns: Run returned %v, want a closed-connection error", n, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%d conns: Run did not return after Close", n)
		}
	}
}

func TestManyConnsRouteReplies(t *testing.T) {
	s4 := listenUDP(t, "127.0.0.1:0")
	s6 := listenUDP(t, "[::1]:0")
	c4 := listenUDP(t, "127.0.0.1:0")
	c6 := listenUDP(t, "[::1]:0")
	eng := &fakeEngine{}
	s := New(eng, Options{Logger: quietLogger()}, s4, s6)
	start(t, s)
	for range 3 {
		if got, from := exchange(t, c4, addrOf(s4), []byte("v4")); string(got) != "v4" || from != addrOf(s4) {
			t.Fatalf("v4: %q from %v", got, from)
		}
		if got, from := exchange(t, c6, addrOf(s6), []byte("v6")); string(got) != "v6" || from != addrOf(s6) {
			t.Fatalf("v6: %q from %v", got, from)
		}
	}
	eventually(t, "stats", func() bool { st := s.Stats(); return st.Received == 6 && st.Sent == 6 })
}

// A peer the engine addresses without having heard from it on this Server goes out on
// the first connection of its address family.
func TestManyConnsFallbackByFamily(t *testing.T) {
	s4 := listenUDP(t, "127.0.0.1:0")
	s6 := listenUDP(t, "[::1]:0")
	target := listenUDP(t, "[::1]:0")
	trigger := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
		return append(out, broker.Datagram{Addr: addrOf(target), B: []byte("hi")})
	}
	s := New(eng, Options{Logger: quietLogger()}, s4, s6)
	start(t, s)
	trigger.WriteToUDPAddrPort([]byte("go"), addrOf(s4))
	if got, from := readReply(t, target); string(got) != "hi" || from != addrOf(s6) {
		t.Fatalf("%q from %v", got, from)
	}
}

func TestRealBrokerConnect(t *testing.T) {
	b, err := broker.New(broker.Config{AdvertiseInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	start(t, New(b, Options{Logger: quietLogger()}, srv))
	connect := append([]byte{10, 0x04, 0x04, 0x01, 0x00, 0x3c}, "abcd"...)
	got, _ := exchange(t, client, addrOf(srv), connect)
	if !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
		t.Fatalf("CONNACK % x, want 03 05 00", got)
	}
}

// The steady state — read, Receive, write — allocates nothing on the UDP fast path.
func TestSteadyStateAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	steadyStateAllocations(t, Options{})
}

// steadyStateAllocations echoes datagrams through a server with opts and fails if a
// round trip allocates.
func steadyStateAllocations(t *testing.T, opts Options) {
	t.Helper()
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	opts.Logger, opts.Observe = quietLogger(), func(mark, sent uint64) {}
	s := New(echoEngine{}, opts, srv)
	start(t, s)
	to := addrOf(srv)
	msg := []byte("ping")
	buf := make([]byte, 100)
	client.SetReadDeadline(time.Time{})
	round := func() {
		client.WriteToUDPAddrPort(msg, to)
		client.ReadFromUDPAddrPort(buf)
	}
	for range 100 {
		round()
	}
	// AllocsPerRun counts the whole process: the client's side of the round trip
	// allocates nothing either, so any allocation is the driver's.
	a := testing.AllocsPerRun(500, round)
	t.Logf("%.2f allocations per round trip", a)
	if a >= 0.5 {
		t.Errorf("%.2f allocations per round trip, want 0 (options %+v)", a, opts)
	}
}

func BenchmarkEchoUDP(b *testing.B) {
	srv := listenUDP(b, "127.0.0.1:0")
	client := listenUDP(b, "127.0.0.1:0")
	eng := echoEngine{}
	start(b, New(eng, Options{Logger: quietLogger()}, srv))
	to := addrOf(srv)
	msg := make([]byte, 32)
	buf := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		client.WriteToUDPAddrPort(msg, to)
		client.ReadFromUDPAddrPort(buf)
	}
}

type echoEngine struct{}

func (echoEngine) Receive(now time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	return append(out, in)
}
func (echoEngine) Tick(now time.Time, out []broker.Datagram) []broker.Datagram { return out }
func (echoEngine) Deadline() time.Time                                         { return time.Time{} }

// Commit runs after each Receive and Tick and before the datagrams go out; when it
// fails they are withheld.
func TestCommitBeforeSend(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	var mu sync.Mutex
	var calls, dueHits int
	fail := false
	var commitDue time.Time
	s := New(&fakeEngine{}, Options{
		Logger: quietLogger(),
		Commit: func(now time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if !commitDue.IsZero() && !now.Before(commitDue) {
				commitDue = time.Time{}
				dueHits++
			}
			if fail {
				return io.ErrShortWrite
			}
			return nil
		},
		CommitDeadline: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return commitDue
		},
	}, srv)
	start(t, s)
	if got, _ := exchange(t, client, addrOf(srv), []byte("a")); string(got) != "a" {
		t.Fatalf("got %q", got)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	client.WriteToUDPAddrPort([]byte("b"), addrOf(srv))
	expectNothing(t, client, 100*time.Millisecond)
	if st := s.Stats(); st.CommitErrors != 1 || st.Sent != 1 {
		t.Errorf("stats %+v", st)
	}
	// A commit deadline wakes the loop with no traffic.
	mu.Lock()
	fail = false
	commitDue = time.Now().Add(20 * time.Millisecond)
	mu.Unlock()
	client.WriteToUDPAddrPort([]byte("c"), addrOf(srv)) // makes the loop re-read the deadline
	readReply(t, client)
	eventually(t, "commit at its deadline", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dueHits == 1
	})
}
