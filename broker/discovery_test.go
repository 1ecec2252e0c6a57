package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestSearchGW(t *testing.T) {
	n := newNet(t, broker.Config{GatewayID: 42, AdvertiseInterval: -1})
	c := n.NewClient("c", addr2)
	req := packet.Packet{Type: packet.SEARCHGW, Radius2: 1}
	c.Send(req)
	p := c.Expect(t, packet.GWINFO)
	if p.GwID != 42 || len(p.GwAddr) != 0 {
		t.Fatalf("GWINFO %s", brokertest.Describe(&p))
	}
	if in, out := packet.Len(&req), c.BytesReceived; out > in+2 {
		t.Fatalf("GWINFO of %d octets answers a SEARCHGW of %d: a reflector", out, in)
	}
	if len(n.Broadcasts) != 0 || n.Stats().Broadcasts != 0 {
		t.Fatal("a unicast SEARCHGW triggered a broadcast")
	}
	n.CheckEmpty(t)
}

func TestAdvertise(t *testing.T) {
	n := newNet(t, broker.Config{GatewayID: 7, AdvertiseInterval: 15 * time.Minute})
	listener := n.NewClient("listener", addr1)
	listener.HearBroadcasts = true
	n.Advance(45 * time.Minute)
	if len(n.Broadcasts) != 4 {
		t.Fatalf("%d ADVERTISEs in 45 min, want 4 (at 0, 15, 30, 45)", len(n.Broadcasts))
	}
	for i, b := range n.Broadcasts {
		p := b.Packet
		if p.Type != packet.ADVERTISE || p.GwID != 7 || p.Duration != 900 {
			t.Errorf("broadcast %d: %s", i, brokertest.Describe(&p))
		}
		if at := brokertest.Since(b.At); at != time.Duration(i)*15*time.Minute {
			t.Errorf("broadcast %d at %v", i, at)
		}
	}
	if got := len(listener.Drain()); got != 4 {
		t.Errorf("listener heard %d", got)
	}
	if s := n.Stats(); s.Broadcasts != 4 {
		t.Errorf("Stats.Broadcasts = %d", s.Broadcasts)
	}
}

func TestForwarderEncapsulation(t *testing.T) {
	n := newNet(t, broker.Config{GatewayID: 9})
	f1 := n.NewForwardedClient("f1", fwd, []byte{0x0a, 0x01})
	f2 := n.NewForwardedClient("f2", fwd, []byte("node-2"))
	f2.Radius = 3
	direct := n.NewClient("fwd-itself", fwd) // the forwarder's address without encapsulation is another peer

	// Discovery through the forwarder.
	f1.Send(packet.Packet{Type: packet.SEARCHGW, Radius2: 1})
	f1.Expect(t, packet.GWINFO)

	f1.Connect(t, brokertest.ConnectOptions{Will: true, WillTopic: "will/f1", WillMsg: "x"})
	f2.Connect(t, brokertest.ConnectOptions{})
	direct.Connect(t, brokertest.ConnectOptions{})
	if _, total := clients(n.Stats()); total != 3 {
		t.Fatalf("sessions = %d, want 3 (two nodes and the forwarder itself)", total)
	}
	f1.Subscribe(t, "a/b", 1)
	f2.Subscribe(t, "a/+", 2)
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	lost := n.DropNext(brokertest.ToClient, f1, packet.PUBLISH)
	pub.Publish(1, packet.TopicNormal, pub.Register(t, "a/b"), "m", false)
	reg := f2.Expect(t, packet.REGISTER)
	f2.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	p := f2.Expect(t, packet.PUBLISH, brokertest.Data("m"), brokertest.QoS(1))
	f2.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	n.Advance(retry) // the retransmission path wraps too
	if lost.Fired != 1 {
		t.Fatal("first delivery to f1 not lost")
	}
	p = f1.Expect(t, packet.PUBLISH, brokertest.Data("m"), brokertest.DUP(true))
	f1.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	direct.ExpectNothing(t)
	n.CheckQuiescent(t)

	// Every datagram to a node is encapsulated with its node id and radius.
	checkWrapped := func(c *brokertest.Client, rs []brokertest.Received) {
		for _, r := range append(rs, c.Inbox()...) {
			if !r.Packet.Encapsulated || !bytes.Equal(r.Packet.NodeID, c.Node) || r.Packet.Radius != c.Radius {
				t.Errorf("%s got %s, not wrapped for node %x radius %d", c.Name, brokertest.Describe(&r.Packet), c.Node, c.Radius)
			}
			if r.Raw[1] != byte(packet.ENCAPSULATED) {
				t.Errorf("%s: % x", c.Name, r.Raw)
			}
		}
	}
	n.KeepLog = true
	f1.Send(pingPkt(""))
	f2.Send(pingPkt(""))
	checkWrapped(f1, nil)
	checkWrapped(f2, nil)
	f1.Expect(t, packet.PINGRESP)
	f2.Expect(t, packet.PINGRESP)
	for _, r := range n.Log {
		if r.Dir == brokertest.ToClient && r.Client != nil && r.Client.Node != nil && r.B[1] != byte(packet.ENCAPSULATED) {
			t.Errorf("to %s unwrapped: % x", r.Client.Name, r.B)
		}
	}
}

func TestForwarderWillAndDisconnect(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	f := n.NewForwardedClient("f1", fwd, []byte{1})
	f.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "will/f1", WillMsg: "gone"})
	n.Advance(15 * time.Second)
	if d := w.DeliveredData(); len(d) != 1 || d[0] != "gone" {
		t.Fatalf("will %q", d)
	}
	// Now unknown: answered with an encapsulated DISCONNECT.
	f.Send(pingPkt(""))
	p := f.Expect(t, packet.DISCONNECT)
	if !p.Encapsulated {
		t.Fatal("DISCONNECT to a node not encapsulated")
	}
}
