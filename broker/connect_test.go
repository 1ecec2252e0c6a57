package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestConnectAccepted(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession, 60))
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	c.ExpectNothing(t)
	wantState(t, n, broker.StateActive, 1)
	c.Send(disconnectPkt())
	c.Expect(t, packet.DISCONNECT)
	n.CheckEmpty(t)
}

func TestConnectRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    packet.Packet
	}{
		{"protocol id 0x02", packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 2, ClientID: []byte("c1")}},
		{"protocol id 0x00", packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 0, ClientID: []byte("c1")}},
		{"client id 0 octets", connectPkt("", packet.FlagCleanSession, 60)},
		{"client id 24 octets", connectPkt(strings.Repeat("x", 24), packet.FlagCleanSession, 60)},
		{"client id 24 octets with will", connectPkt(strings.Repeat("x", 24), packet.FlagCleanSession|packet.FlagWill, 60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, broker.Config{})
			c := n.NewClient("c1", addr1)
			c.Send(tc.p)
			c.Expect(t, packet.CONNACK, brokertest.RC(packet.NotSupported))
			c.ExpectNothing(t)
			n.CheckEmpty(t)
			// Not connected: a PUBLISH is answered with DISCONNECT.
			c.Send(publishPkt(1, packet.TopicShort, 0x6162, 1, "x"))
			c.Expect(t, packet.DISCONNECT)
		})
	}
}

func TestConnectClientID23Octets(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr2)
	c.Connect(t, brokertest.ConnectOptions{ClientID: strings.Repeat("x", 23)})
	wantState(t, n, broker.StateActive, 1)
}

// connectedPair returns a subscriber on topic "w/t" (QoS 1) and the client under test.
func willWatcher(t *testing.T, n *brokertest.Net, filter string) *brokertest.Client {
	t.Helper()
	w := n.NewClient("watcher", addr3)
	w.Auto = true
	w.Connect(t, brokertest.ConnectOptions{})
	if p := w.Subscribe(t, filter, 1); p.ReturnCode != packet.Accepted {
		t.Fatalf("subscribe %q: %s", filter, brokertest.Describe(&p))
	}
	return w
}

func TestConnectWillExchange(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, Flags: qos(1), WillTopic: []byte("will/c1")})
	c.Expect(t, packet.WILLMSGREQ)
	wantState(t, n, broker.StateActive, 1) // only the watcher: c1 is not connected yet
	c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("c1 died")})
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	wantState(t, n, broker.StateActive, 2)

	// Silent past 1.5x its keep-alive: lost, and the will goes out.
	n.Advance(15 * time.Second)
	if got := w.DeliveredData(); len(got) != 1 || got[0] != "c1 died" || w.Deliveries[0].Topic != "will/c1" || w.Deliveries[0].QoS != 1 {
		t.Fatalf("watcher got %+v, want the will", w.Deliveries)
	}
	if s := n.Stats(); s.WillsPublished != 1 {
		t.Errorf("WillsPublished = %d", s.WillsPublished)
	}
}

func TestConnectWillTopicReqLost(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c := n.NewClient("c1", addr1)
	lost := n.DropNext(brokertest.ToClient, c, packet.WILLTOPICREQ)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.ExpectNothing(t)
	// The client's T_RETRY expires: it sends CONNECT again.
	n.Advance(retry)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/c1")})
	c.Expect(t, packet.WILLMSGREQ)
	c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("bye")})
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	if lost.Fired != 1 {
		t.Fatal("WILLTOPICREQ was not lost")
	}
	n.Advance(20 * time.Second)
	if got := w.DeliveredData(); len(got) != 1 || got[0] != "bye" {
		t.Fatalf("watcher got %q, want the will once", got)
	}
}

func TestConnectWillMsgReqLost(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	n.DropNext(brokertest.ToClient, c, packet.WILLMSGREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/old")})
	c.ExpectNothing(t)
	n.Advance(retry)
	// The client retransmits WILLTOPIC (here with another topic: the last one counts).
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/c1")})
	c.Expect(t, packet.WILLMSGREQ)
	c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("bye")})
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	n.Advance(20 * time.Second)
	if len(w.Deliveries) != 1 || w.Deliveries[0].Topic != "will/c1" {
		t.Fatalf("watcher got %+v, want the will on will/c1", w.Deliveries)
	}
}

func TestConnectWillConnackLost(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/c1")})
	c.Expect(t, packet.WILLMSGREQ)
	n.DropNext(brokertest.ToClient, c, packet.CONNACK)
	c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("bye")})
	c.ExpectNothing(t)
	c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("bye")})
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	wantState(t, n, broker.StateActive, 1)
}

func TestConnectEmptyWillTopic(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "#")
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC}) // empty: no will
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	c.ExpectNothing(t) // no WILLMSGREQ
	n.Advance(time.Minute)
	if len(w.Deliveries) != 0 || n.Stats().WillsPublished != 0 {
		t.Fatalf("no will expected, watcher got %+v", w.Deliveries)
	}
}

func TestConnectInvalidWillTopic(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/+")})
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.NotSupported))
	c.Send(pingPkt(""))
	c.Expect(t, packet.DISCONNECT)
	n.CheckEmpty(t)
}

func TestConnectWillExchangeAbandoned(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 3})
	c := n.NewClient("c1", addr1)
	c.Send(connectPkt("c1", packet.FlagCleanSession|packet.FlagWill, 10))
	c.Expect(t, packet.WILLTOPICREQ)
	n.Advance(time.Minute) // > T_RETRY x (N_RETRY+1)
	n.CheckEmpty(t)
	c.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("will/c1")})
	c.ExpectNothing(t)
	if n.Stats().Drops[broker.DropBadState] != 1 {
		t.Errorf("late WILLTOPIC not counted as bad state: %v", n.Stats().Drops)
	}
}

func TestWillUpdate(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "will/a", WillMsg: "a"})
	c.Send(packet.Packet{Type: packet.WILLTOPICUPD, Flags: qos(1) | packet.FlagRetain, WillTopic: []byte("will/b")})
	c.Expect(t, packet.WILLTOPICRESP, brokertest.RC(packet.Accepted))
	c.Send(packet.Packet{Type: packet.WILLMSGUPD, WillMsg: []byte("b")})
	c.Expect(t, packet.WILLMSGRESP, brokertest.RC(packet.Accepted))
	c.Send(packet.Packet{Type: packet.WILLTOPICUPD, WillTopic: []byte("will/#")})
	c.Expect(t, packet.WILLTOPICRESP, brokertest.RC(packet.NotSupported))
	n.Advance(15 * time.Second)
	if len(w.Deliveries) != 1 || w.Deliveries[0].Topic != "will/b" || w.Deliveries[0].Data != "b" {
		t.Fatalf("watcher got %+v, want the updated will", w.Deliveries)
	}
	if n.Stats().Retained != 1 {
		t.Errorf("a retained will must be stored: Retained = %d", n.Stats().Retained)
	}
}

func TestWillUpdateEmptyDeletesWill(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "#")
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "will/a", WillMsg: "a"})
	c.Send(packet.Packet{Type: packet.WILLTOPICUPD})
	c.Expect(t, packet.WILLTOPICRESP, brokertest.RC(packet.Accepted))
	n.Advance(time.Minute)
	if len(w.Deliveries) != 0 {
		t.Fatalf("will deleted, watcher got %+v", w.Deliveries)
	}
	n.NewClient("x", addr4) // keep the watcher honest: it was connected throughout
	wantState(t, n, broker.StateActive, 1)
}

func TestWillUpdateNotConnected(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Send(packet.Packet{Type: packet.WILLTOPICUPD, WillTopic: []byte("a")})
	c.Expect(t, packet.DISCONNECT)
	c.Send(packet.Packet{Type: packet.WILLMSGUPD, WillMsg: []byte("a")})
	c.Expect(t, packet.DISCONNECT)
}

func TestDisconnectPublishesNoWill(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "#")
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "will/a", WillMsg: "a"})
	c.Send(disconnectPkt())
	c.Expect(t, packet.DISCONNECT)
	n.Advance(time.Hour)
	if len(w.Deliveries) != 0 || n.Stats().WillsPublished != 0 {
		t.Fatalf("DISCONNECT must not publish the will: %+v", w.Deliveries)
	}
	wantState(t, n, broker.StateActive, 1)
	_, total := clients(n.Stats())
	if total != 1 {
		t.Errorf("sessions = %d, want only the watcher's", total)
	}
}

func TestCleanSessionDropsState(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	id := pub.Register(t, "a/b")
	sub := n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "a/b", 1)
	sub.Send(disconnectPkt())
	sub.Expect(t, packet.DISCONNECT)
	if s := n.Stats(); s.Subscriptions != 0 {
		t.Fatalf("clean session ended: subscriptions = %d", s.Subscriptions)
	}
	pub.Publish(1, packet.TopicNormal, id, "while away", false)
	pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	sub.Connect(t, brokertest.ConnectOptions{})
	pub.Publish(1, packet.TopicNormal, id, "after", false)
	pub.Expect(t, packet.PUBACK)
	sub.ExpectNothing(t)
	n.CheckQuiescent(t)
}

func TestPersistentSessionKeepsState(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	ab := pub.Register(t, "a/b")
	sub := n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	suback := sub.Subscribe(t, "a/b", 2)
	sub.Subscribe(t, "w/+", 1)
	wt := pub.Register(t, "w/t")
	// A delivery on the wildcard makes the broker register w/t with the subscriber.
	pub.Publish(0, packet.TopicNormal, wt, "w0", false)
	reg := sub.Expect(t, packet.REGISTER, brokertest.Name("w/t"))
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.Expect(t, packet.PUBLISH, brokertest.Data("w0"))

	// A QoS 1 delivery left unacknowledged when the client goes.
	pub.Publish(1, packet.TopicNormal, ab, "inflight", false)
	pub.Expect(t, packet.PUBACK)
	first := sub.Expect(t, packet.PUBLISH, brokertest.Data("inflight"), brokertest.DUP(false))
	sub.Send(disconnectPkt())
	sub.Expect(t, packet.DISCONNECT)
	wantState(t, n, broker.StateDisconnected, 1)

	// While away: QoS 1 and 2 are kept, QoS 0 is not.
	pub.Publish(0, packet.TopicNormal, ab, "q0", false)
	pub.Publish(1, packet.TopicNormal, ab, "q1", false)
	pub.Publish(2, packet.TopicNormal, ab, "q2", false)
	pub.Publish(1, packet.TopicNormal, wt, "w1", false)
	pub.Drain()
	if s := n.Stats(); s.Queued != 4 || s.Subscriptions != 2 {
		t.Fatalf("while away: queued=%d subscriptions=%d, want 4 and 2", s.Queued, s.Subscriptions)
	}

	sub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	// The unacknowledged one comes back first with its msg id and DUP, then the rest,
	// one at a time, with the topic ids the client was told before (no REGISTER).
	p := sub.Expect(t, packet.PUBLISH, brokertest.Data("inflight"), brokertest.DUP(true), brokertest.MsgID(first.MsgID), brokertest.TopicID(suback.TopicID))
	sub.ExpectNothing(t)
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	p = sub.Expect(t, packet.PUBLISH, brokertest.Data("q1"), brokertest.QoS(1), brokertest.DUP(false))
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	p = sub.Expect(t, packet.PUBLISH, brokertest.Data("q2"), brokertest.QoS(2))
	sub.Send(ack(packet.PUBREC, p.MsgID))
	sub.Expect(t, packet.PUBREL, brokertest.MsgID(p.MsgID))
	sub.Send(ack(packet.PUBCOMP, p.MsgID))
	p = sub.Expect(t, packet.PUBLISH, brokertest.Data("w1"), brokertest.TopicID(reg.TopicID))
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	sub.ExpectNothing(t)
	n.CheckQuiescent(t)

	// Reconnecting with CleanSession=1 drops it all.
	sub.Send(disconnectPkt())
	sub.Expect(t, packet.DISCONNECT)
	pub.Publish(1, packet.TopicNormal, ab, "dropped", false)
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.ExpectNothing(t)
	if s := n.Stats(); s.Subscriptions != 0 || s.Queued != 0 {
		t.Fatalf("clean reconnect: subscriptions=%d queued=%d", s.Subscriptions, s.Queued)
	}
	pub.Publish(1, packet.TopicNormal, ab, "after", false)
	sub.ExpectNothing(t)
}

func TestPersistentSessionKeepsQoS2Receipt(t *testing.T) {
	// A QoS 2 PUBLISH received, its PUBREC lost, the client reconnects and resends it:
	// the broker must not deliver it a second time.
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "a/b", 2)
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	id := pub.Register(t, "a/b")
	n.DropNext(brokertest.ToClient, pub, packet.PUBREC)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 7, "once"))
	pub.ExpectNothing(t)
	pub.Send(disconnectPkt())
	pub.Expect(t, packet.DISCONNECT)
	pub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	dup := publishPkt(2, packet.TopicNormal, id, 7, "once")
	dup.Flags |= packet.FlagDUP
	pub.Send(dup)
	pub.Expect(t, packet.PUBREC, brokertest.MsgID(7))
	pub.Send(ack(packet.PUBREL, 7))
	pub.Expect(t, packet.PUBCOMP, brokertest.MsgID(7))
	if got := countData(sub, "once"); got != 1 {
		t.Fatalf("delivered %d times, want exactly once", got)
	}
}

func TestTakeoverFromNewAddress(t *testing.T) {
	n := newNet(t, broker.Config{MaxAmplification: 3})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	id := pub.Register(t, "a/b")
	old := n.NewClient("dev", addr2)
	old.Connect(t, brokertest.ConnectOptions{Persistent: true})
	old.Subscribe(t, "a/b", 1)
	moved := n.NewClient("dev-moved", addr4)
	moved.Connect(t, brokertest.ConnectOptions{ClientID: "dev", Persistent: true})
	if s := n.Stats(); s.Takeovers != 1 {
		t.Errorf("Takeovers = %d, want 1", s.Takeovers)
	}
	wantState(t, n, broker.StateActive, 2)
	pub.Publish(1, packet.TopicNormal, id, "to the new address", false)
	// The new address has not proven it receives (amplification.go): the broker first
	// challenges it with a REGISTER; the answer unlocks the delivery.
	reg := moved.Expect(t, packet.REGISTER, brokertest.Name("a/b"))
	moved.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	moved.Expect(t, packet.PUBLISH, brokertest.Data("to the new address"), brokertest.TopicID(id))
	old.ExpectNothing(t)
	// The old address has no session any more.
	old.Send(pingPkt(""))
	old.Expect(t, packet.DISCONNECT)
}

func TestTakeoverWithCleanSession(t *testing.T) {
	n := newNet(t, broker.Config{})
	old := n.NewClient("dev", addr2)
	old.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "w", WillMsg: "x"})
	old.Subscribe(t, "a/b", 1)
	moved := n.NewClient("dev-moved", addr1)
	moved.Connect(t, brokertest.ConnectOptions{ClientID: "dev"})
	if s := n.Stats(); s.Subscriptions != 0 || s.Takeovers != 1 {
		t.Errorf("clean takeover: subscriptions=%d takeovers=%d", s.Subscriptions, s.Takeovers)
	}
	_, total := clients(n.Stats())
	if total != 1 {
		t.Errorf("sessions = %d, want 1", total)
	}
}

func TestMaxClients(t *testing.T) {
	n := newNet(t, broker.Config{MaxClients: 2})
	a, b, c := n.NewClient("a", addr1), n.NewClient("b", addr2), n.NewClient("c", addr3)
	a.Connect(t, brokertest.ConnectOptions{})
	b.Connect(t, brokertest.ConnectOptions{})
	c.Send(connectPkt("c", packet.FlagCleanSession, 0))
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Congestion))
	if s := n.Stats(); s.LimitsHit[broker.LimitClients] != 1 {
		t.Errorf("LimitsHit[clients] = %d", s.LimitsHit[broker.LimitClients])
	}
	// A known client id reconnecting is not a new client.
	a.Connect(t, brokertest.ConnectOptions{})
	a.Send(disconnectPkt())
	a.Expect(t, packet.DISCONNECT)
	c.Connect(t, brokertest.ConnectOptions{})
}

func TestUnknownAddressAnsweredWithDisconnect(t *testing.T) {
	for _, p := range []packet.Packet{
		publishPkt(0, packet.TopicNormal, 1, 0, "x"),
		publishPkt(1, packet.TopicNormal, 1, 1, "x"),
		publishPkt(2, packet.TopicShort, 0x6162, 1, "x"),
		{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("a")},
		{Type: packet.UNSUBSCRIBE, MsgID: 1, TopicName: []byte("a")},
		{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("a")},
		{Type: packet.PINGREQ},
		pingPkt("nobody"),
		ack(packet.PUBREL, 1),
		{Type: packet.WILLTOPICUPD, WillTopic: []byte("a")},
		{Type: packet.WILLMSGUPD, WillMsg: []byte("a")},
		disconnectPkt(),
		sleepPkt(10),
	} {
		t.Run(p.Type.String(), func(t *testing.T) {
			n := newNet(t, broker.Config{})
			c := n.NewClient("stranger", addr2)
			in := packet.Append(nil, &p)
			c.Send(p)
			d := c.Expect(t, packet.DISCONNECT)
			if d.HasDuration {
				t.Errorf("DISCONNECT with duration")
			}
			if out := c.BytesReceived; out > len(in) {
				t.Errorf("answer of %d octets to a %d-octet message", out, len(in))
			}
			n.CheckEmpty(t)
		})
	}
	// Acknowledgements for nothing are dropped quietly and counted.
	n := newNet(t, broker.Config{})
	c := n.NewClient("stranger", addr1)
	for _, p := range []packet.Packet{pubackPkt(1, 1, 0), ack(packet.PUBREC, 1), ack(packet.PUBCOMP, 1), {Type: packet.REGACK, TopicID: 1, MsgID: 1}, {Type: packet.PINGRESP}} {
		c.Send(p)
	}
	c.ExpectNothing(t)
	if d := n.Stats().Drops[broker.DropNoSession]; d != 5 {
		t.Errorf("Drops[no_session] = %d, want 5", d)
	}
}

func TestPersistentSessionResumesQoS2AfterPubrec(t *testing.T) {
	// The subscriber got the PUBLISH and answered PUBREC, then went away before PUBREL:
	// on its return only PUBREL is due (the message must not be delivered again).
	n := newNet(t, broker.Config{})
	pub, sub, id := pubSub(t, n, 2)
	sub.Send(disconnectPkt())
	sub.Drain()
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	sub.Subscribe(t, "a/b", 2)
	pub.Send(publishPkt(2, packet.TopicNormal, id, 1, "m"))
	p := sub.Expect(t, packet.PUBLISH, brokertest.QoS(2))
	n.DropNext(brokertest.ToClient, sub, packet.PUBREL)
	sub.Send(ack(packet.PUBREC, p.MsgID))
	sub.Send(disconnectPkt())
	sub.Expect(t, packet.DISCONNECT)
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	sub.Expect(t, packet.PUBREL, brokertest.MsgID(p.MsgID))
	sub.ExpectNothing(t)
	sub.Send(ack(packet.PUBCOMP, p.MsgID))
	n.CheckQuiescent(t)
}

func TestWillExchangeAbandonedPersistent(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetries: 1})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{Persistent: true})
	c.Subscribe(t, "a/b", 1)
	c.Send(disconnectPkt())
	c.Expect(t, packet.DISCONNECT)
	c.Send(connectPkt("c1", packet.FlagWill, 0)) // persistent, with a will: never finished
	c.Expect(t, packet.WILLTOPICREQ)
	n.Advance(time.Minute)
	// The session is kept (persistent), unbound: the address must CONNECT again.
	wantState(t, n, broker.StateDisconnected, 1)
	c.Send(pingPkt(""))
	c.Expect(t, packet.DISCONNECT)
	if s := n.Stats(); s.Subscriptions != 1 {
		t.Errorf("Subscriptions = %d, the persistent session's subscription must survive", s.Subscriptions)
	}
}

func TestSubscribeQoSMinus1GrantsQoS0(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(packet.QoSMinus1), MsgID: 1, TopicName: []byte("a")})
	c.Expect(t, packet.SUBACK, brokertest.QoS(0), brokertest.RC(packet.Accepted))
}
