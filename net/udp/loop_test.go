package udp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/net/serve"
)

// echo is an engine that sends every datagram back.
type echo struct{}

func (echo) Receive(_ time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	return append(out, in)
}
func (echo) Tick(_ time.Time, out []broker.Datagram) []broker.Datagram { return out }
func (echo) Deadline() time.Time                                       { return time.Time{} }

// The hosted daemon's path end to end — serve's loop over this Bind — allocates
// nothing per round trip in steady state, blocking and busy polling alike.
func TestLoopOverBindAllocations(t *testing.T) {
	for _, poll := range []time.Duration{0, time.Second} {
		b, srv := listenBind(t, "127.0.0.1:0", Options{}, DefaultBatch)
		s := serve.NewBind(echo{}, serve.Options{BusyPoll: poll, Observe: func(mark, sent uint64) {}}, b)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		to := localOf(srv)
		msg, buf := []byte("ping"), make([]byte, 64)
		round := func() {
			client.WriteToUDPAddrPort(msg, to)
			client.ReadFromUDPAddrPort(buf)
		}
		for range 100 {
			round()
		}
		a := testing.AllocsPerRun(500, round)
		cancel()
		<-done
		client.Close()
		t.Logf("busy_poll %v: %.2f allocations per round trip", poll, a)
		if a >= 0.5 {
			t.Errorf("busy_poll %v: %.2f allocations per round trip through serve over udp.Bind, want 0", poll, a)
		}
	}
}
