package netstack

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/net/serve"
)

// echoEngine is an engine that sends every datagram back.
type echoEngine struct{}

func (echoEngine) Receive(_ time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	return append(out, in)
}
func (echoEngine) Tick(_ time.Time, out []broker.Datagram) []broker.Datagram { return out }
func (echoEngine) Deadline() time.Time                                       { return time.Time{} }

// The image's path end to end — serve's loop over UDPBind on one stack, a client
// Bind on another, joined by the in-process link — allocates nothing per round trip
// in steady state.
func TestLoopOverBindAllocations(t *testing.T) {
	p := newPair(t, 1)
	srv := listenBind(t, p.b, "[::]:1883")
	cli := listenBind(t, p.a, "[::]:40000")
	s := serve.NewBind(echoEngine{}, serve.Options{Observe: func(mark, sent uint64) {}}, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	out := []serve.Packet{{Buf: make([]byte, 32), Addr: netip.AddrPortFrom(b4, 1883)}}
	in := packets(1, 2048)
	round := func() {
		if n, err := cli.SendBatch(out); n != 1 {
			t.Fatalf("SendBatch: %v", err)
		}
		cli.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := cli.ReceiveBatch(in); n != 1 {
			t.Fatalf("ReceiveBatch: %v", err)
		}
	}
	// Warm up past the in-process Link's ring of 1024 frame buffers per port (each
	// slot is allocated on its first use), so only steady state is measured.
	for range portQueueLen + 100 {
		round()
	}
	a := testing.AllocsPerRun(1000, round)
	t.Logf("%.2f allocations per round trip through the loop (race detector %v)", a, raceEnabled)
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector; counts are not comparable")
	}
	if a > 0.1 {
		t.Errorf("%.2f allocations per round trip through serve over UDPBind, want 0", a)
	}
}
