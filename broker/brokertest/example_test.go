package brokertest_test

import (
	"fmt"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

// A scripted subscriber and publisher over a simulated network; the first delivery to
// the subscriber is lost, and virtual time brings the broker's retransmission.
func Example() {
	var t fakeTB // in a test: the *testing.T
	n := brokertest.New(&t, broker.Config{AdvertiseInterval: -1})

	sub := n.NewClient("sub", "[2001:db8::1]:1000")
	sub.Connect(&t, brokertest.ConnectOptions{})
	suback := sub.Subscribe(&t, "greetings", 1)

	pub := n.NewClient("pub", "10.0.0.1:1000")
	pub.Connect(&t, brokertest.ConnectOptions{})
	id := pub.Register(&t, "greetings")

	n.DropNext(brokertest.ToClient, sub, packet.PUBLISH)
	pub.Publish(1, packet.TopicNormal, id, "hello", false)
	sub.ExpectNothing(&t)

	n.Advance(10 * time.Second) // T_RETRY
	p := sub.Expect(&t, packet.PUBLISH, brokertest.Data("hello"), brokertest.DUP(true), brokertest.TopicID(suback.TopicID))
	fmt.Printf("%s, DUP %v, after %v\n", p.Data, p.Flags.DUP(), brokertest.Since(n.Now()))
	// Output: hello, DUP true, after 10s
}
