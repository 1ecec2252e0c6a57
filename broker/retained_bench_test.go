package broker_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// BenchmarkSubscribeWildcardRetained: one wildcard SUBSCRIBE by a connected client while
// 10,000 retained topics unrelated to its filter are stored (issue 12, attack 6). With
// the retained index its cost does not depend on how many retained topics there are.
//
//	go test -run='^$' -bench=BenchmarkSubscribeWildcardRetained -benchmem ./broker/
func BenchmarkSubscribeWildcardRetained(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bk, err := broker.New(broker.Config{AdvertiseInterval: -1, Seed: 1, MaxRetained: 10000})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Unix(1_700_000_000, 0)
			var out []broker.Datagram
			for i := range n {
				out, err = bk.Inject(now, fmt.Sprintf("site/%d/sensor/temperature", i), []byte("21.5"), 0, true, out[:0])
				if err != nil {
					b.Fatal(err)
				}
			}
			if got := bk.Stats().Retained; got != int64(n) {
				b.Fatalf("%d retained, want %d", got, n)
			}
			r := &benchRig{b: bk, now: now, out: make([]broker.Datagram, 0, 64)}
			sub := netip.MustParseAddrPort("10.0.0.2:1883")
			r.send(b, sub, connectPkt("sub", packet.FlagCleanSession, 0))
			p := packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("other/+/temperature")}
			dg := broker.Datagram{Addr: sub, B: packet.Append(nil, &p)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.out = bk.Receive(now, dg, r.out[:0])
				if len(r.out) != 1 {
					b.Fatalf("SUBSCRIBE answered with %d datagrams, want a SUBACK", len(r.out))
				}
			}
		})
	}
}
