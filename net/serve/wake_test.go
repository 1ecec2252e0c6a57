package serve

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// Wake gets a Tick onto the engine goroutine with no traffic and no timer, over one
// connection (an interrupted read) and over several (the select), many times over,
// and the loop still reads and times normally afterwards.
func TestWake(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(map[int]string{1: "one conn", 2: "two conns"}[n], func(t *testing.T) {
			var conns []net.PacketConn
			for range n {
				conns = append(conns, listenUDP(t, "127.0.0.1:0"))
			}
			eng := &fakeEngine{}
			var ticks atomic.Int64
			eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
				ticks.Add(1)
				return out
			}
			s := New(eng, Options{Logger: quietLogger()}, conns...)
			start(t, s)
			time.Sleep(20 * time.Millisecond)
			if got := ticks.Load(); got != 0 {
				t.Fatalf("%d ticks before any Wake (no deadline)", got)
			}
			for i := int64(1); i <= 50; i++ {
				s.Wake()
				eventually(t, "tick after Wake", func() bool { return ticks.Load() >= i })
			}
			// Quiet again: no busy loop from a deadline left in the past.
			before := ticks.Load()
			time.Sleep(50 * time.Millisecond)
			if extra := ticks.Load() - before; extra > 1 {
				t.Errorf("%d ticks without Wake: the loop spins", extra)
			}
			// And it still serves datagrams.
			client := listenUDP(t, "127.0.0.1:0")
			if got, _ := exchange(t, client, addrOf(conns[0]), []byte("ping")); string(got) != "ping" {
				t.Errorf("after Wake: echo %q", got)
			}
		})
	}
}
