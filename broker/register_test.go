package broker_test

import (
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestRegisterFromClient(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 5, TopicName: []byte("a/b")})
	p := c.Expect(t, packet.REGACK, brokertest.MsgID(5), brokertest.RC(packet.Accepted))
	if p.TopicID == 0 || p.TopicID == 0xFFFF {
		t.Fatalf("REGACK with reserved topic id %#x", p.TopicID)
	}
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 6, TopicName: []byte("a/b")})
	c.Expect(t, packet.REGACK, brokertest.MsgID(6), brokertest.TopicID(p.TopicID))
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 7, TopicName: []byte("a/c")})
	if q := c.Expect(t, packet.REGACK, brokertest.MsgID(7)); q.TopicID == p.TopicID {
		t.Fatal("two topics, one id")
	}
	// A name that is not a valid topic name (a wildcard) is refused.
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 8, TopicName: []byte("a/+")})
	c.Expect(t, packet.REGACK, brokertest.MsgID(8), brokertest.RC(packet.NotSupported), brokertest.TopicID(0))
	if s := n.Stats(); s.Topics != 2 {
		t.Errorf("Topics = %d, want 2", s.Topics)
	}
}

// wildcardPair: a subscriber on "a/+" (QoS 1, scripted) and a publisher with a/b and a/c
// registered.
func wildcardPair(t *testing.T, n *brokertest.Net) (sub, pub *brokertest.Client, ab, ac uint16) {
	t.Helper()
	sub = n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{KeepAlive: 300, Will: true, WillTopic: "will/sub", WillMsg: "gone"})
	sub.Subscribe(t, "a/+", 1)
	pub = n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	return sub, pub, pub.Register(t, "a/b"), pub.Register(t, "a/c")
}

func TestRegisterFromBrokerBeforeWildcardDelivery(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub, pub, ab, _ := wildcardPair(t, n)
	pub.Publish(0, packet.TopicNormal, ab, "first", false)
	reg := sub.Expect(t, packet.REGISTER, brokertest.TopicID(ab), brokertest.Name("a/b"))
	sub.ExpectNothing(t) // the PUBLISH waits for the REGACK
	pub.Publish(0, packet.TopicNormal, ab, "second", false)
	sub.ExpectNothing(t) // queued behind the registration, in order
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.Expect(t, packet.PUBLISH, brokertest.Data("first"), brokertest.TopicID(ab), brokertest.TopicIDType(packet.TopicNormal))
	sub.Expect(t, packet.PUBLISH, brokertest.Data("second"))
	// Known now: no second REGISTER.
	pub.Publish(0, packet.TopicNormal, ab, "third", false)
	sub.Expect(t, packet.PUBLISH, brokertest.Data("third"))
	sub.ExpectNothing(t)
	n.CheckQuiescent(t)
}

func TestRegackRejectionStopsTopic(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub, pub, ab, ac := wildcardPair(t, n)
	pub.Publish(1, packet.TopicNormal, ab, "first", false)
	pub.Publish(1, packet.TopicNormal, ab, "second", false)
	reg := sub.Expect(t, packet.REGISTER, brokertest.Name("a/b"))
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: packet.NotSupported})
	sub.ExpectNothing(t)
	pub.Publish(1, packet.TopicNormal, ab, "third", false)
	sub.ExpectNothing(t)
	if d := n.Stats().Drops[broker.DropRefusedTopic]; d != 3 {
		t.Errorf("Drops[refused_topic] = %d, want 3", d)
	}
	// Other topics on the same subscription still flow.
	pub.Publish(1, packet.TopicNormal, ac, "other", false)
	reg = sub.Expect(t, packet.REGISTER, brokertest.Name("a/c"))
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	p := sub.Expect(t, packet.PUBLISH, brokertest.Data("other"))
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	n.CheckQuiescent(t)
}

func TestRegisterLostIsRetransmittedWithSameMsgID(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub, pub, ab, _ := wildcardPair(t, n)
	lost := n.DropNext(brokertest.ToClient, sub, packet.REGISTER)
	pub.Publish(0, packet.TopicNormal, ab, "m", false)
	sub.ExpectNothing(t)
	n.Advance(retry - time.Millisecond)
	sub.ExpectNothing(t)
	n.Advance(time.Millisecond)
	reg := sub.Expect(t, packet.REGISTER, brokertest.Name("a/b"), brokertest.MsgID(lost.Hit.MsgID), brokertest.TopicID(ab))
	if n.Stats().Retransmissions != 1 {
		t.Errorf("Retransmissions = %d", n.Stats().Retransmissions)
	}
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.Expect(t, packet.PUBLISH, brokertest.Data("m"))
	// A late duplicate REGACK is an acknowledgement for nothing.
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.ExpectNothing(t)
	if d := n.Stats().Drops[broker.DropUnknownMsgID]; d != 1 {
		t.Errorf("Drops[unknown_msg_id] = %d", d)
	}
}

func TestRegisterRetriesExhaustedLosesClient(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 2})
	w := willWatcher(t, n, "will/#")
	sub, pub, ab, _ := wildcardPair(t, n)
	pub.Publish(0, packet.TopicNormal, ab, "m", false)
	n.Advance(3 * retry)
	regs := sub.Drain()
	if len(regs) != 3 {
		t.Fatalf("got %d datagrams, want the REGISTER and 2 resends", len(regs))
	}
	for _, r := range regs {
		if r.Packet.Type != packet.REGISTER || r.Packet.MsgID != regs[0].Packet.MsgID {
			t.Fatalf("want REGISTERs with one msg id, got %s", brokertest.Describe(&r.Packet))
		}
	}
	if len(w.Deliveries) != 1 || w.Deliveries[0].Data != "gone" {
		t.Fatalf("the lost subscriber's will: %+v", w.Deliveries)
	}
	sub.Send(pingPkt(""))
	sub.Expect(t, packet.DISCONNECT)
}

func TestRegisterCongestedRegackRetriedLater(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 1})
	sub, pub, ab, _ := wildcardPair(t, n)
	pub.Publish(0, packet.TopicNormal, ab, "m", false)
	for i := 0; i < 3; i++ { // congestion does not count against N_RETRY
		reg := sub.Expect(t, packet.REGISTER)
		sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: packet.Congestion})
		sub.ExpectNothing(t)
		n.Advance(retry)
	}
	reg := sub.Expect(t, packet.REGISTER)
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.Expect(t, packet.PUBLISH, brokertest.Data("m"))
}

func TestMaxTopicsPerClient(t *testing.T) {
	n := newNet(t, broker.Config{MaxTopicsPerClient: 2})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Register(t, "t/1")
	c.Register(t, "t/2")
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 99, TopicName: []byte("t/3")})
	c.Expect(t, packet.REGACK, brokertest.MsgID(99), brokertest.RC(packet.Congestion))
	// Re-registering a topic it holds is not a new one.
	c.Register(t, "t/1")
	if s := n.Stats(); s.LimitsHit[broker.LimitTopicsPerClient] != 1 {
		t.Errorf("LimitsHit[topics_per_client] = %d", s.LimitsHit[broker.LimitTopicsPerClient])
	}
}

func TestMaxTopics(t *testing.T) {
	n := newNet(t, broker.Config{MaxTopics: 2})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Register(t, "t/1")
	c.Register(t, "t/2")
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 99, TopicName: []byte("t/3")})
	c.Expect(t, packet.REGACK, brokertest.MsgID(99), brokertest.RC(packet.Congestion))
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, MsgID: 100, TopicName: []byte("t/4")})
	c.Expect(t, packet.SUBACK, brokertest.MsgID(100), brokertest.RC(packet.Congestion))
}

func TestPubackInvalidTopicIDReRegisters(t *testing.T) {
	// A client that lost its mapping answers PUBACK 0x02 (6.12): the broker must not keep
	// using the id, but register it again and resend.
	for _, persistent := range []bool{false, true} {
		name := map[bool]string{false: "clean", true: "persistent"}[persistent]
		t.Run(name, func(t *testing.T) {
			n := newNet(t, broker.Config{})
			pub := n.NewClient("pub", addr1)
			pub.Connect(t, brokertest.ConnectOptions{})
			ab := pub.Register(t, "a/b")
			sub := n.NewClient("sub", addr2)
			sub.Connect(t, brokertest.ConnectOptions{Persistent: persistent})
			sub.Subscribe(t, "a/b", 1)
			pub.Publish(1, packet.TopicNormal, ab, "m1", false)
			p := sub.Expect(t, packet.PUBLISH, brokertest.Data("m1"), brokertest.TopicID(ab))
			sub.Send(pubackPkt(p.TopicID, p.MsgID, packet.InvalidTopicID))
			want := "m1"
			if !persistent {
				// A clean session keeps no copy of m1 to resend; the mapping is
				// dropped, so the next delivery registers the topic first.
				sub.ExpectNothing(t)
				pub.Publish(1, packet.TopicNormal, ab, "m2", false)
				want = "m2"
			}
			reg := sub.Expect(t, packet.REGISTER, brokertest.TopicID(ab), brokertest.Name("a/b"))
			sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
			p = sub.Expect(t, packet.PUBLISH, brokertest.Data(want))
			sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
			n.CheckQuiescent(t)
		})
	}
}
