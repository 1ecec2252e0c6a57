package netstack

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// TestBindReceiveQueueBounded: a Bind nobody reads holds at most its queue's bound;
// the rest is dropped and counted (never silently), and once read the queue takes
// datagrams again.
func TestBindReceiveQueueBounded(t *testing.T) {
	const total = bindQueueLen + 500
	p := newPair(t, 1)
	sink := listenBind(t, p.a, "[::]:1884")
	cli := listenBind(t, p.b, "[::]:40000")
	dst := netip.AddrPortFrom(a4, 1884)
	// Resolve the neighbour first: datagrams sent while ARP is pending wait in
	// gVisor's queue and may go out after later ones (UDP keeps no order).
	exchangeTo(t, cli, sink, dst)
	base := sink.Stats().Received
	buf := make([]byte, 4)
	for i := 0; i < total; i++ {
		binary.BigEndian.PutUint32(buf, uint32(i))
		if n, err := cli.SendBatch([]serve.Packet{{Buf: buf, Addr: dst}}); n != 1 {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%200 == 199 { // pace: the in-process Link's own queue holds 1024 frames
			waitFor(t, func() bool { st := sink.Stats(); return st.Received-base+st.RxQueueFull > uint64(i-100) })
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := sink.Stats(); st.Received-base+st.RxQueueFull < total && time.Now().Before(deadline); st = sink.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	st := sink.Stats()
	st.Received -= base
	if st.Received+st.RxQueueFull != total || st.RxQueueFull == 0 || st.Received > bindQueueLen || p.link.Stats().Overflow != 0 {
		t.Fatalf("stats %+v for %d sent (link %+v): want every datagram queued or counted as dropped", st, total, p.link.Stats())
	}
	in := packets(BindBatchSize, 64)
	read := 0
	for {
		n, err := sink.TryReceiveBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for _, q := range in[:n] {
			if got := binary.BigEndian.Uint32(q.Buf[:q.N]); got != uint32(read) {
				t.Fatalf("datagram %d carries %d: queue out of order", read, got)
			}
			read++
		}
	}
	if uint64(read) != st.Received {
		t.Fatalf("read %d, queued %d", read, st.Received)
	}
	exchangeTo(t, cli, sink, dst)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// exchangeTo checks that one more datagram from cli reaches sink.
func exchangeTo(t *testing.T, cli, sink *UDPBind, dst netip.AddrPort) {
	t.Helper()
	if n, err := cli.SendBatch([]serve.Packet{{Buf: []byte("again"), Addr: dst}}); n != 1 {
		t.Fatal(err)
	}
	sink.SetReadDeadline(time.Now().Add(2 * time.Second))
	in := packets(1, 64)
	if n, err := sink.ReceiveBatch(in); n != 1 || string(in[0].Buf[:in[0].N]) != "again" {
		t.Fatalf("after draining: %d, %v", n, err)
	}
}
