package serve

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// With BusyPoll the loop reads without blocking for a while after each datagram: the
// same behaviour must hold — replies to the right address (IPv4 and IPv6), oversized
// datagrams dropped, timers and Wake served, cancellation prompt — and the spinning
// must stop once the traffic does.

func TestBusyPollEcho(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			srv := listenUDP(t, addr)
			client := listenUDP(t, addr)
			eng := &fakeEngine{}
			s := New(eng, Options{Logger: quietLogger(), BusyPoll: 5 * time.Millisecond, MaxDatagram: 100}, srv)
			if runtime.GOOS == "linux" && runtime.GOMAXPROCS(0) >= 2 && !isPoller(s.bind) {
				t.Fatal("a *net.UDPConn on Linux should poll")
			}
			start(t, s)
			for i := range 200 {
				msg := []byte{byte(i), 'x'}
				got, from := exchange(t, client, addrOf(srv), msg)
				if string(got) != string(msg) || from != addrOf(srv) {
					t.Fatalf("echo %d: %q from %v", i, got, from)
				}
			}
			eng.mu.Lock()
			mark := eng.marks[len(eng.marks)-1]
			eng.mu.Unlock()
			if mark == 0 {
				t.Error("polled datagrams carry no mark")
			}
			// The engine saw the client's own address, unmapped.
			var seen netip.AddrPort // written by Receive, which holds eng.mu
			eng.mu.Lock()
			eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
				seen = in.Addr
				return append(out, in)
			}
			eng.mu.Unlock()
			exchange(t, client, addrOf(srv), []byte("who"))
			eng.mu.Lock()
			got := seen
			eng.mu.Unlock()
			if want := addrOf(client); got.Addr().Unmap() != want.Addr().Unmap() || got.Port() != want.Port() {
				t.Errorf("engine saw %v, client is %v", got, want)
			}
			// Oversized, right after traffic (inside the poll window).
			client.WriteToUDPAddrPort(make([]byte, 500), addrOf(srv))
			if got, _ := exchange(t, client, addrOf(srv), []byte("after")); string(got) != "after" {
				t.Fatalf("after oversized: %q", got)
			}
			if st := s.Stats(); st.Oversized != 1 {
				t.Errorf("oversized %d, want 1 (stats %+v)", st.Oversized, st)
			}
		})
	}
}

func TestBusyPollTimersAndWake(t *testing.T) {
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	eng := &fakeEngine{}
	var ticks atomic.Int64
	next := time.Now()
	eng.deadline = next
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
		ticks.Add(1)
		if !now.Before(next) {
			next = next.Add(5 * time.Millisecond)
			eng.deadline = next
		}
		return out
	}
	s := New(eng, Options{Logger: quietLogger(), BusyPoll: time.Second}, srv)
	start(t, s)
	// Traffic keeps the loop polling (a 1 s window): the timers must still run.
	t0 := time.Now()
	for time.Since(t0) < 100*time.Millisecond {
		exchange(t, client, addrOf(srv), []byte("x"))
	}
	if n := ticks.Load(); n < 10 {
		t.Errorf("%d ticks in 100ms of polling with a 5ms period", n)
	}
	eng.mu.Lock()
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram { ticks.Add(1); return out }
	eng.deadline = time.Time{}
	eng.mu.Unlock()
	for i := range 20 {
		before := ticks.Load()
		s.Wake()
		eventually(t, "tick after Wake", func() bool { return ticks.Load() > before })
		if got, _ := exchange(t, client, addrOf(srv), []byte{byte(i)}); len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("after Wake %d: echo %q", i, got)
		}
	}
}

func TestBusyPollCancelAndIdle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("busy polling is Linux only")
	}
	srv := listenUDP(t, "127.0.0.1:0")
	client := listenUDP(t, "127.0.0.1:0")
	s := New(&fakeEngine{}, Options{Logger: quietLogger(), BusyPoll: 2 * time.Millisecond}, srv)
	stop := start(t, s)
	for range 50 {
		exchange(t, client, addrOf(srv), []byte("x"))
	}
	// Idle: after the window the loop sleeps in the kernel, so the process uses
	// (almost) no CPU. A spinning loop would use the whole 300 ms.
	time.Sleep(20 * time.Millisecond)
	before := cpuTime(t)
	time.Sleep(300 * time.Millisecond)
	if used := cpuTime(t) - before; used > 100*time.Millisecond {
		t.Errorf("%v of CPU in 300 ms idle: the loop kept spinning", used)
	}
	// Cancelled while polling: Run returns promptly (start's cleanup checks it).
	client.WriteToUDPAddrPort([]byte("x"), addrOf(srv))
	stop()
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBusyPollSteadyStateAllocations(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("busy polling is Linux only")
	}
	steadyStateAllocations(t, Options{BusyPoll: time.Second})
}

func isPoller(b Bind) bool { _, ok := b.(Poller); return ok }
