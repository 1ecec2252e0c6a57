package udp_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/musqratt/musqratt/net/serve"
	"github.com/musqratt/musqratt/net/udp"
)

// A Bind sends and receives batches into buffers its caller keeps; here a socket
// sends three datagrams to itself in one batch and reads them back.
func ExampleNewBind() {
	c, err := udp.Listen(context.Background(), "127.0.0.1:0", udp.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	b, err := udp.NewBind(c, 0)
	if err != nil {
		log.Fatal(err)
	}
	self := netip.MustParseAddrPort(b.String())

	var out []serve.Packet
	for _, s := range []string{"one", "two", "three"} {
		out = append(out, serve.Packet{Buf: []byte(s), Addr: self})
	}
	if n, err := b.SendBatch(out); err != nil {
		log.Fatalf("sent %d: %v", n, err)
	}

	in := make([]serve.Packet, b.BatchSize())
	for i := range in {
		in[i].Buf = make([]byte, 1500)
	}
	for got := 0; got < len(out); {
		n, err := b.ReceiveBatch(in)
		if err != nil {
			log.Fatal(err)
		}
		for _, p := range in[:n] {
			fmt.Printf("%q from itself: %v\n", p.Buf[:p.N], p.Addr == self)
		}
		got += n
	}
	// Output:
	// "one" from itself: true
	// "two" from itself: true
	// "three" from itself: true
}
