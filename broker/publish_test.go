package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// pubSub returns a connected scripted publisher with "a/b" registered and a connected
// scripted subscriber to "a/b" at QoS granted.
func pubSub(t *testing.T, n *brokertest.Net, granted packet.QoS) (pub, sub *brokertest.Client, id uint16) {
	t.Helper()
	sub = n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{})
	if p := sub.Subscribe(t, "a/b", granted); p.ReturnCode != packet.Accepted || p.Flags.QoS() != granted {
		t.Fatalf("SUBACK %s", brokertest.Describe(&p))
	}
	pub = n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	return pub, sub, pub.Register(t, "a/b")
}

func TestPublishQoS0(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 0)
	pub.Send(publishPkt(0, packet.TopicNormal, id, 0, "hello"))
	pub.ExpectNothing(t)
	sub.Expect(t, packet.PUBLISH, brokertest.QoS(0), brokertest.TopicID(id), brokertest.Data("hello"), brokertest.MsgID(0), brokertest.DUP(false), brokertest.Retain(false))
	sub.ExpectNothing(t)
	if s := n.Stats(); s.PublishesIn != 1 || s.Deliveries != 1 {
		t.Errorf("PublishesIn=%d Deliveries=%d", s.PublishesIn, s.Deliveries)
	}
}

func TestPublishQoS1(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 1)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 42, "hello"))
	pub.Expect(t, packet.PUBACK, brokertest.TopicID(id), brokertest.MsgID(42), brokertest.RC(packet.Accepted))
	p := sub.Expect(t, packet.PUBLISH, brokertest.QoS(1), brokertest.TopicID(id), brokertest.Data("hello"), brokertest.DUP(false))
	if p.MsgID == 0 {
		t.Fatal("QoS 1 PUBLISH with msg id 0")
	}
	if n.Stats().Inflight != 1 {
		t.Errorf("Inflight = %d before PUBACK", n.Stats().Inflight)
	}
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	sub.ExpectNothing(t)
	n.CheckQuiescent(t)
}

func TestPublishQoS2(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 2)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 42, "hello"))
	pub.Expect(t, packet.PUBREC, brokertest.MsgID(42))
	// Delivered on receipt of the PUBLISH (not held until PUBREL).
	p := sub.Expect(t, packet.PUBLISH, brokertest.QoS(2), brokertest.Data("hello"))
	pub.Send(ack(packet.PUBREL, 42))
	pub.Expect(t, packet.PUBCOMP, brokertest.MsgID(42))
	sub.Send(ack(packet.PUBREC, p.MsgID))
	sub.Expect(t, packet.PUBREL, brokertest.MsgID(p.MsgID))
	sub.Send(ack(packet.PUBCOMP, p.MsgID))
	sub.ExpectNothing(t)
	pub.ExpectNothing(t)
	n.CheckQuiescent(t)
}

func TestPublishQoSMinus1(t *testing.T) {
	n := newNet(t, broker.Config{Predefined: predefined})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.SubscribeID(t, packet.TopicPredefined, 7, 2)
	sub.Subscribe(t, "ab", 1)
	sensor := n.NewClient("sensor", addr1) // never connects
	sensor.Send(publishPkt(packet.QoSMinus1, packet.TopicPredefined, 7, 0, "pre"))
	sensor.Send(publishPkt(packet.QoSMinus1, packet.TopicShort, topic.ShortID("ab"), 0, "short"))
	sensor.Send(publishPkt(packet.QoSMinus1, packet.TopicNormal, 1, 0, "normal"))  // needs a REGISTER: dropped
	sensor.Send(publishPkt(packet.QoSMinus1, packet.TopicPredefined, 99, 0, "??")) // unknown: dropped
	sensor.ExpectNothing(t)                                                        // QoS -1 is never answered
	if got := sub.DeliveredData(); len(got) != 2 || got[0] != "pre" || got[1] != "short" {
		t.Fatalf("delivered %q", got)
	}
	for _, d := range sub.Deliveries {
		if d.QoS != 0 {
			t.Errorf("QoS -1 delivered at QoS %d, want 0", d.QoS)
		}
	}
	s := n.Stats()
	if s.Drops[broker.DropQoSMinus1Normal] != 1 {
		t.Errorf("Drops[qos_minus1_normal_topic] = %d", s.Drops[broker.DropQoSMinus1Normal])
	}
	if _, total := clients(s); total != 1 {
		t.Errorf("a QoS -1 publisher must not create a session: %d sessions", total)
	}
}

func TestPublishUnknownTopicID(t *testing.T) {
	n := newNet(t, broker.Config{Predefined: predefined})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	for _, tc := range []struct {
		q  packet.QoS
		t  packet.TopicIDType
		id uint16
	}{
		{0, packet.TopicNormal, 77}, {1, packet.TopicNormal, 77}, {2, packet.TopicNormal, 77},
		{1, packet.TopicNormal, 0}, {1, packet.TopicNormal, 0xFFFF}, {1, packet.TopicPredefined, 99},
	} {
		c.Send(publishPkt(tc.q, tc.t, tc.id, 5, "x"))
		c.Expect(t, packet.PUBACK, brokertest.TopicID(tc.id), brokertest.MsgID(5), brokertest.RC(packet.InvalidTopicID))
	}
	if s := n.Stats(); s.PublishesIn != 0 {
		t.Errorf("PublishesIn = %d", s.PublishesIn)
	}
}

func TestDeliveryQoSIsMinOfPublishAndGranted(t *testing.T) {
	for pq := packet.QoS(0); pq <= 2; pq++ {
		for gq := packet.QoS(0); gq <= 2; gq++ {
			t.Run(fmt.Sprintf("publish%d/granted%d", pq, gq), func(t *testing.T) {
				n := newNet(t, broker.Config{})
				sub := n.NewClient("sub", addr2)
				sub.Auto = true
				sub.Connect(t, brokertest.ConnectOptions{})
				sub.Subscribe(t, "a/b", gq)
				pub := n.NewClient("pub", addr1)
				pub.Auto = true
				pub.Connect(t, brokertest.ConnectOptions{})
				pub.Publish(pq, packet.TopicNormal, pub.Register(t, "a/b"), "m", false)
				want := min(pq, gq)
				if len(sub.Deliveries) != 1 || sub.Deliveries[0].QoS != want {
					t.Fatalf("deliveries %+v, want one at QoS %d", sub.Deliveries, want)
				}
				n.CheckQuiescent(t)
			})
		}
	}
}

func TestOneInFlightPerClient(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 2)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "first"))
	pub.Send(publishPkt(2, packet.TopicNormal, id, 2, "second"))
	pub.Send(publishPkt(0, packet.TopicNormal, id, 0, "third"))
	pub.Drain()
	p1 := sub.Expect(t, packet.PUBLISH, brokertest.Data("first"), brokertest.QoS(1))
	sub.ExpectNothing(t)
	if s := n.Stats(); s.Inflight != 1 || s.Queued != 2 {
		t.Fatalf("inflight=%d queued=%d, want 1 and 2", s.Inflight, s.Queued)
	}
	// Time alone does not release the next one, and the resend is the same message.
	n.Advance(retry)
	sub.Expect(t, packet.PUBLISH, brokertest.Data("first"), brokertest.DUP(true), brokertest.MsgID(p1.MsgID))
	sub.ExpectNothing(t)
	// The PUBACK releases the next at once, in the same call; the QoS 0 one behind it
	// follows in order (the window holds QoS 1/2 only).
	sub.Send(pubackPkt(p1.TopicID, p1.MsgID, 0))
	p2 := sub.Expect(t, packet.PUBLISH, brokertest.Data("second"), brokertest.QoS(2), brokertest.DUP(false))
	sub.Expect(t, packet.PUBLISH, brokertest.Data("third"), brokertest.QoS(0))
	sub.ExpectNothing(t)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 3, "fourth"))
	sub.ExpectNothing(t) // "second" is still in flight until PUBCOMP
	sub.Send(ack(packet.PUBREC, p2.MsgID))
	sub.Expect(t, packet.PUBREL)
	sub.ExpectNothing(t)
	sub.Send(ack(packet.PUBCOMP, p2.MsgID))
	p4 := sub.Expect(t, packet.PUBLISH, brokertest.Data("fourth"), brokertest.QoS(1))
	sub.Send(pubackPkt(p4.TopicID, p4.MsgID, 0))
	n.CheckQuiescent(t)
	if p1.MsgID == p2.MsgID {
		t.Error("two deliveries in a row with one msg id")
	}
}

func TestBrokerResendsWithDUP(t *testing.T) {
	for _, q := range []packet.QoS{1, 2} {
		t.Run(fmt.Sprint("qos", q), func(t *testing.T) {
			n := newNet(t, broker.Config{})
			pub, sub, id := pubSub(t, n, q)
			pub.Send(publishPkt(q, packet.TopicNormal, id, 1, "m"))
			first := sub.Expect(t, packet.PUBLISH, brokertest.DUP(false))
			n.Advance(retry - time.Millisecond)
			sub.ExpectNothing(t)
			n.Advance(time.Millisecond)
			again := sub.Expect(t, packet.PUBLISH, brokertest.DUP(true), brokertest.MsgID(first.MsgID), brokertest.Data("m"), brokertest.QoS(q))
			if q == 2 {
				// After PUBREC it is PUBREL that is resent.
				sub.Send(ack(packet.PUBREC, again.MsgID))
				sub.Expect(t, packet.PUBREL)
				n.Advance(retry)
				sub.Expect(t, packet.PUBREL, brokertest.MsgID(first.MsgID))
				sub.Send(ack(packet.PUBCOMP, first.MsgID))
			} else {
				sub.Send(pubackPkt(id, again.MsgID, 0))
			}
			n.Advance(time.Minute)
			sub.ExpectNothing(t)
			if s := n.Stats(); s.Retransmissions != uint64(q) || s.Deliveries != 1 {
				t.Errorf("Retransmissions=%d Deliveries=%d", s.Retransmissions, s.Deliveries)
			}
			n.CheckQuiescent(t)
		})
	}
}

func TestRetriesExhaustedLosesClientAndPublishesWill(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 3})
	w := willWatcher(t, n, "will/#")
	sub := n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{Will: true, WillTopic: "will/sub", WillMsg: "sub lost"})
	sub.Subscribe(t, "a/b", 1)
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	pub.Publish(1, packet.TopicNormal, pub.Register(t, "a/b"), "m", false)
	n.Advance(3 * retry)
	if got := len(sub.Drain()); got != 4 {
		t.Fatalf("%d PUBLISHes, want 1 + N_RETRY(3) resends", got)
	}
	if len(w.Deliveries) != 0 {
		t.Fatal("lost too early")
	}
	n.Advance(retry)
	if d := w.DeliveredData(); len(d) != 1 || d[0] != "sub lost" {
		t.Fatalf("will: %q", d)
	}
	sub.ExpectNothing(t)
	n.Advance(time.Hour)
	sub.ExpectNothing(t)
	if _, total := clients(n.Stats()); total != 2 { // watcher and publisher
		t.Errorf("sessions = %d, want 2", total)
	}
	n.CheckQuiescent(t)
}

func TestPubackCongestionBacksOffWithoutLosingClient(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 1})
	pub, sub, id := pubSub(t, n, 1)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "m"))
	p := sub.Expect(t, packet.PUBLISH, brokertest.DUP(false))
	for range 4 {
		sub.Send(pubackPkt(p.TopicID, p.MsgID, packet.Congestion))
		sub.ExpectNothing(t)
		n.Advance(retry)
		p = sub.Expect(t, packet.PUBLISH, brokertest.DUP(true))
	}
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	n.CheckQuiescent(t)
	wantState(t, n, broker.StateActive, 2)
}

func TestMaxPayload(t *testing.T) {
	n := newNet(t, broker.Config{MaxPayload: 10})
	pub, sub, id := pubSub(t, n, 1)
	for _, q := range []packet.QoS{0, 1, 2} {
		pub.Send(publishPkt(q, packet.TopicNormal, id, 9, strings.Repeat("x", 11)))
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(9), brokertest.RC(packet.Congestion))
	}
	pub.Send(publishPkt(1, packet.TopicNormal, id, 10, strings.Repeat("x", 10)))
	pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	sub.Expect(t, packet.PUBLISH, brokertest.Data(strings.Repeat("x", 10)))
	sub.ExpectNothing(t)
	if s := n.Stats(); s.LimitsHit[broker.LimitPayload] != 3 {
		t.Errorf("LimitsHit[payload] = %d", s.LimitsHit[broker.LimitPayload])
	}
}

func TestLargePublishUsesLongLength(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 1)
	data := strings.Repeat("y", 1000)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, data))
	pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	p := sub.Expect(t, packet.PUBLISH, brokertest.Data(data))
	// Resent with DUP in the 3-octet length form: the flags octet is at offset 4.
	n.Advance(retry)
	r := sub.Inbox()[0]
	if r.Raw[0] != 0x01 || r.Raw[4]&0x80 == 0 {
		t.Fatalf("resend of a long PUBLISH: % x", r.Raw[:8])
	}
	sub.Expect(t, packet.PUBLISH, brokertest.DUP(true), brokertest.Data(data), brokertest.MsgID(p.MsgID))
}

func TestMaxQoS2Incoming(t *testing.T) {
	n := newNet(t, broker.Config{MaxQoS2Incoming: 2})
	pub, _, id := pubSub(t, n, 0)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 1, "a"))
	pub.Expect(t, packet.PUBREC)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 2, "b"))
	pub.Expect(t, packet.PUBREC)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 3, "c"))
	pub.Expect(t, packet.PUBACK, brokertest.MsgID(3), brokertest.RC(packet.Congestion))
	// A retransmission of one already held is not a new one.
	pub.Send(publishPkt(2, packet.TopicNormal, id, 2, "b"))
	pub.Expect(t, packet.PUBREC, brokertest.MsgID(2))
	pub.Send(ack(packet.PUBREL, 1))
	pub.Expect(t, packet.PUBCOMP)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 3, "c"))
	pub.Expect(t, packet.PUBREC, brokertest.MsgID(3))
	if s := n.Stats(); s.LimitsHit[broker.LimitQoS2Incoming] != 1 {
		t.Errorf("LimitsHit[qos2_incoming] = %d", s.LimitsHit[broker.LimitQoS2Incoming])
	}
}

// TestMaxQueuedPerClient is queue_full_policy drop (the behaviour before back-pressure):
// every PUBLISH acknowledged, deliveries beyond the bound dropped and counted.
// backpressure_test.go has the default, PolicyBlock.
func TestMaxQueuedPerClient(t *testing.T) {
	n := newNet(t, broker.Config{MaxQueuedPerClient: 2, QueueFullPolicy: broker.PolicyDrop})
	pub, sub, id := pubSub(t, n, 1)
	for i := range 5 {
		pub.Send(publishPkt(1, packet.TopicNormal, id, uint16(i+1), fmt.Sprint(i)))
	}
	pub.Drain()
	if s := n.Stats(); s.Inflight != 1 || s.Queued != 2 || s.Drops[broker.DropQueueFull] != 2 || s.LimitsHit[broker.LimitQueue] != 2 {
		t.Fatalf("inflight=%d queued=%d dropped=%d limits=%d", s.Inflight, s.Queued, s.Drops[broker.DropQueueFull], s.LimitsHit[broker.LimitQueue])
	}
	var got []string
	for range 3 {
		p := sub.Expect(t, packet.PUBLISH)
		got = append(got, string(p.Data))
		sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	}
	sub.ExpectNothing(t)
	if strings.Join(got, ",") != "0,1,2" {
		t.Fatalf("delivered %v, want the first three in order", got)
	}
	n.CheckQuiescent(t)
}

func TestDeliveryCarriesMarkOfPublish(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 1)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "a"))
	markA := pub.Inbox()[0].Mark
	pub.Send(publishPkt(1, packet.TopicNormal, id, 2, "b"))
	markB := pub.Inbox()[1].Mark
	if markA == 0 || markA == markB {
		t.Fatalf("PUBACK marks %d, %d", markA, markB)
	}
	a := sub.Inbox()[0]
	if a.Mark != markA {
		t.Errorf("delivery mark %d, want the PUBLISH's %d", a.Mark, markA)
	}
	sub.Drain()
	sub.Send(pubackPkt(a.Packet.TopicID, a.Packet.MsgID, 0))
	// b was queued; sent now because of the PUBACK, it still carries its PUBLISH's mark.
	if b := sub.Inbox()[0]; string(b.Packet.Data) != "b" || b.Mark != markB {
		t.Errorf("queued delivery %s mark %d, want %d", brokertest.Describe(&b.Packet), b.Mark, markB)
	}
}
