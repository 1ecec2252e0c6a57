package broker_test

import (
	"fmt"
	"testing"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

var predefined = map[uint16]string{7: "pre/seven", 8: "pre/eight"}

func TestSubscribeByName(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 3, TopicName: []byte("a/b")})
	p := c.Expect(t, packet.SUBACK, brokertest.MsgID(3), brokertest.RC(packet.Accepted), brokertest.QoS(2))
	if p.TopicID == 0 {
		t.Fatal("SUBACK for a topic name must carry its id")
	}
	// The same id as a REGISTER of that name.
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 4, TopicName: []byte("a/b")})
	c.Expect(t, packet.REGACK, brokertest.TopicID(p.TopicID))
	// Wildcard filters get topic id 0x0000.
	for i, f := range []string{"a/+", "a/#", "#", "+/+/c"} {
		c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: uint16(10 + i), TopicName: []byte(f)})
		c.Expect(t, packet.SUBACK, brokertest.MsgID(uint16(10+i)), brokertest.RC(packet.Accepted), brokertest.TopicID(0), brokertest.QoS(1))
	}
	// Invalid filters are refused.
	for i, f := range []string{"a/#/b", "a+", "#/", "a\x00b"} {
		c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: uint16(20 + i), TopicName: []byte(f)})
		c.Expect(t, packet.SUBACK, brokertest.MsgID(uint16(20+i)), brokertest.RC(packet.InvalidTopicID), brokertest.TopicID(0))
	}
	if s := n.Stats(); s.Subscriptions != 5 {
		t.Errorf("Subscriptions = %d, want 5", s.Subscriptions)
	}
	// Subscribing again to a filter it holds replaces the QoS, not adds a subscription.
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(0), MsgID: 30, TopicName: []byte("a/+")})
	c.Expect(t, packet.SUBACK, brokertest.QoS(0))
	if s := n.Stats(); s.Subscriptions != 5 {
		t.Errorf("Subscriptions = %d after resubscribing, want 5", s.Subscriptions)
	}
	c.Send(disconnectPkt())
	n.CheckEmpty(t)
}

// TestTopicIDTypes: every way of naming a topic in SUBSCRIBE against every way of
// naming it in PUBLISH; the delivery names it the way the subscriber can understand
// without a REGISTER where one exists (pre-defined id, short name).
func TestTopicIDTypes(t *testing.T) {
	type sub struct {
		name  string
		do    func(t *testing.T, c *brokertest.Client) packet.Packet
		topic string // the topic delivered
	}
	subs := []sub{
		{"name", func(t *testing.T, c *brokertest.Client) packet.Packet { return c.Subscribe(t, "x/y", 1) }, "x/y"},
		{"predefined", func(t *testing.T, c *brokertest.Client) packet.Packet {
			return c.SubscribeID(t, packet.TopicPredefined, 7, 1)
		}, "pre/seven"},
		{"predefined by name", func(t *testing.T, c *brokertest.Client) packet.Packet { return c.Subscribe(t, "pre/seven", 1) }, "pre/seven"},
		{"short", func(t *testing.T, c *brokertest.Client) packet.Packet {
			return c.SubscribeID(t, packet.TopicShort, topic.ShortID("ab"), 1)
		}, "ab"},
		{"short by name", func(t *testing.T, c *brokertest.Client) packet.Packet { return c.Subscribe(t, "ab", 1) }, "ab"},
	}
	type pub struct {
		name string
		do   func(t *testing.T, c *brokertest.Client, topicName string)
	}
	pubs := []pub{
		{"registered id", func(t *testing.T, c *brokertest.Client, name string) {
			c.Publish(1, packet.TopicNormal, c.Register(t, name), "m", false)
		}},
		{"predefined or short id", func(t *testing.T, c *brokertest.Client, name string) {
			switch name {
			case "pre/seven":
				c.Publish(1, packet.TopicPredefined, 7, "m", false)
			case "ab":
				c.Publish(1, packet.TopicShort, topic.ShortID("ab"), "m", false)
			default:
				c.Publish(1, packet.TopicNormal, c.Register(t, name), "m", false)
			}
		}},
	}
	for _, s := range subs {
		for _, p := range pubs {
			t.Run(s.name+"/"+p.name, func(t *testing.T) {
				n := newNet(t, broker.Config{Predefined: predefined})
				sc := n.NewClient("sub", addr2)
				sc.Auto = true
				sc.Connect(t, brokertest.ConnectOptions{})
				ack := s.do(t, sc)
				if ack.ReturnCode != packet.Accepted {
					t.Fatalf("SUBACK %s", brokertest.Describe(&ack))
				}
				pc := n.NewClient("pub", addr1)
				pc.Connect(t, brokertest.ConnectOptions{})
				p.do(t, pc, s.topic)
				if rc := pc.Await(t, packet.PUBACK).ReturnCode; rc != packet.Accepted {
					t.Fatalf("PUBACK rc %d", rc)
				}
				if len(sc.Deliveries) != 1 || sc.Deliveries[0].Topic != s.topic {
					t.Fatalf("deliveries %+v, want one on %q", sc.Deliveries, s.topic)
				}
				got := sc.Await(t, packet.PUBLISH)
				want := map[string]packet.TopicIDType{"pre/seven": packet.TopicPredefined, "ab": packet.TopicShort}[s.topic]
				if got.Flags.TopicIDType() != want {
					t.Errorf("delivered with topic id type %v, want %v", got.Flags.TopicIDType(), want)
				}
				for _, r := range sc.Drain() {
					if r.Packet.Type == packet.REGISTER {
						t.Errorf("REGISTER for a topic the subscriber can name: %s", brokertest.Describe(&r.Packet))
					}
				}
			})
		}
	}
}

func TestSubscribePredefinedUnknown(t *testing.T) {
	n := newNet(t, broker.Config{Predefined: predefined})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	if p := c.SubscribeID(t, packet.TopicPredefined, 9, 1); p.ReturnCode != packet.InvalidTopicID {
		t.Fatalf("SUBSCRIBE to an unknown pre-defined id: %s", brokertest.Describe(&p))
	}
	p := c.SubscribeID(t, packet.TopicPredefined, 7, 1)
	if p.ReturnCode != packet.Accepted || p.TopicID != 7 {
		t.Fatalf("SUBSCRIBE pre-defined 7: %s", brokertest.Describe(&p))
	}
}

func TestWildcardMatching(t *testing.T) {
	filters := []string{"s/+/t", "s/#", "+/x/+", "#", "s/+"}
	for _, tc := range []struct {
		topic string
		want  []string // filters that match
	}{
		{"s/x/t", []string{"s/+/t", "s/#", "+/x/+", "#"}},
		{"s/x/y", []string{"s/#", "+/x/+", "#"}},
		{"s", []string{"s/#", "#"}},
		{"s/", []string{"s/#", "#", "s/+"}},
		{"s/x", []string{"s/#", "#", "s/+"}},
		{"q/x/z/w", []string{"#"}},
		{"$SYS/x", nil},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			n := newNet(t, broker.Config{})
			subs := map[string]*brokertest.Client{}
			for i, f := range filters {
				c := n.NewClient(f, fmt.Sprintf("10.0.1.%d:1000", i+1))
				c.Auto = true
				c.Connect(t, brokertest.ConnectOptions{ClientID: fmt.Sprint("s", i)})
				c.Subscribe(t, f, 0)
				subs[f] = c
			}
			pub := n.NewClient("pub", addr1)
			pub.Connect(t, brokertest.ConnectOptions{})
			pub.Publish(0, packet.TopicNormal, pub.Register(t, tc.topic), "m", false)
			for _, f := range filters {
				want := 0
				for _, w := range tc.want {
					if w == f {
						want = 1
					}
				}
				if got := len(subs[f].Deliveries); got != want {
					t.Errorf("filter %q: %d deliveries, want %d", f, got, want)
				}
			}
		})
	}
}

func TestOverlappingSubscriptionsDeliverOnce(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "a/b", 0)
	sub.Subscribe(t, "a/+", 2)
	sub.Subscribe(t, "#", 1)
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	pub.Publish(2, packet.TopicNormal, pub.Register(t, "a/b"), "m", false)
	if len(sub.Deliveries) != 1 || sub.Deliveries[0].QoS != 2 {
		t.Fatalf("deliveries %+v, want one at the highest granted QoS (2)", sub.Deliveries)
	}
}

func TestUnsubscribe(t *testing.T) {
	n := newNet(t, broker.Config{Predefined: predefined})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "a/b", 1)
	sub.Subscribe(t, "w/#", 1)
	sub.SubscribeID(t, packet.TopicPredefined, 7, 1)
	sub.SubscribeID(t, packet.TopicShort, topic.ShortID("ab"), 1)
	if s := n.Stats(); s.Subscriptions != 4 {
		t.Fatalf("Subscriptions = %d", s.Subscriptions)
	}
	for i, p := range []packet.Packet{
		{Type: packet.UNSUBSCRIBE, MsgID: 40, TopicName: []byte("a/b")},
		{Type: packet.UNSUBSCRIBE, MsgID: 41, TopicName: []byte("w/#")},
		{Type: packet.UNSUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicPredefined), MsgID: 42, TopicID: 7},
		{Type: packet.UNSUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicShort), MsgID: 43, TopicID: topic.ShortID("ab")},
		{Type: packet.UNSUBSCRIBE, MsgID: 44, TopicName: []byte("never/subscribed")},
	} {
		sub.Send(p)
		sub.Expect(t, packet.UNSUBACK, brokertest.MsgID(uint16(40+i)))
	}
	if s := n.Stats(); s.Subscriptions != 0 {
		t.Fatalf("Subscriptions = %d after UNSUBSCRIBE", s.Subscriptions)
	}
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	pub.Publish(1, packet.TopicNormal, pub.Register(t, "a/b"), "m", false)
	pub.Publish(1, packet.TopicNormal, pub.Register(t, "w/x"), "m", false)
	pub.Publish(1, packet.TopicPredefined, 7, "m", false)
	pub.Publish(1, packet.TopicShort, topic.ShortID("ab"), "m", false)
	sub.ExpectNothing(t)
}

func TestMaxSubsPerClient(t *testing.T) {
	n := newNet(t, broker.Config{MaxSubsPerClient: 2})
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Subscribe(t, "a", 0)
	c.Subscribe(t, "b/#", 0)
	if p := c.Subscribe(t, "c", 0); p.ReturnCode != packet.Congestion || p.TopicID != 0 {
		t.Fatalf("third subscription: %s, want congestion", brokertest.Describe(&p))
	}
	if p := c.Subscribe(t, "a", 1); p.ReturnCode != packet.Accepted {
		t.Fatalf("re-subscribing a held filter: %s", brokertest.Describe(&p))
	}
	if s := n.Stats(); s.LimitsHit[broker.LimitSubsPerClient] != 1 || s.Subscriptions != 2 {
		t.Errorf("LimitsHit = %d, Subscriptions = %d", s.LimitsHit[broker.LimitSubsPerClient], s.Subscriptions)
	}
}

func TestRetained(t *testing.T) {
	n := newNet(t, broker.Config{})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	r1 := pub.Register(t, "r/1")
	r2 := pub.Register(t, "r/2")
	live := n.NewClient("live", addr4)
	live.Auto = true
	live.Connect(t, brokertest.ConnectOptions{})
	live.Subscribe(t, "r/#", 1)

	retained := func(q packet.QoS, id uint16, data string) {
		t.Helper()
		p := publishPkt(q, packet.TopicNormal, id, pub.NewMsgID(), data)
		p.Flags |= packet.FlagRetain
		pub.Send(p)
		pub.Drain()
	}
	retained(1, r1, "v1")
	retained(0, r2, "v2")
	if s := n.Stats(); s.Retained != 2 {
		t.Fatalf("Retained = %d", s.Retained)
	}
	// Live deliveries to an existing subscription carry Retain=0.
	for _, d := range live.Deliveries {
		if d.Retain {
			t.Errorf("live delivery %+v has Retain set", d)
		}
	}

	// A new subscription to the topic itself: SUBACK, then the retained message with
	// Retain=1 (its id is in the SUBACK: no REGISTER).
	s1 := n.NewClient("s1", addr2)
	s1.Connect(t, brokertest.ConnectOptions{})
	s1.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("r/1")})
	s1.Expect(t, packet.SUBACK, brokertest.TopicID(r1))
	p := s1.Expect(t, packet.PUBLISH, brokertest.Data("v1"), brokertest.Retain(true), brokertest.QoS(1), brokertest.TopicID(r1))
	s1.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	s1.ExpectNothing(t)

	// A wildcard subscription: SUBACK, then for each retained topic REGISTER first.
	s2 := n.NewClient("s2", addr3)
	s2.Connect(t, brokertest.ConnectOptions{})
	s2.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 1, TopicName: []byte("r/+")})
	s2.Expect(t, packet.SUBACK, brokertest.TopicID(0))
	got := map[string]packet.QoS{}
	for range 2 {
		reg := s2.Expect(t, packet.REGISTER)
		s2.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
		p := s2.Expect(t, packet.PUBLISH, brokertest.Retain(true), brokertest.TopicID(reg.TopicID))
		got[string(reg.TopicName)+"="+string(p.Data)] = p.Flags.QoS()
		if p.Flags.QoS() == 1 {
			s2.Send(pubackPkt(p.TopicID, p.MsgID, 0))
		}
	}
	if len(got) != 2 || got["r/1=v1"] != 1 || got["r/2=v2"] != 0 {
		t.Fatalf("retained via wildcard: %v (QoS = min(stored, granted))", got)
	}
	s2.ExpectNothing(t)

	// An empty retained PUBLISH clears it.
	retained(0, r1, "")
	if s := n.Stats(); s.Retained != 1 {
		t.Fatalf("Retained = %d after clearing r/1", s.Retained)
	}
	s3 := n.NewClient("s3", "10.0.0.30:1")
	s3.Auto = true
	s3.Connect(t, brokertest.ConnectOptions{})
	s3.Subscribe(t, "r/1", 1)
	if len(s3.Deliveries) != 0 {
		t.Fatalf("cleared retained message delivered: %+v", s3.Deliveries)
	}
	// A new retained value replaces the old.
	retained(1, r2, "v2'")
	s4 := n.NewClient("s4", "10.0.0.31:1")
	s4.Auto = true
	s4.Connect(t, brokertest.ConnectOptions{})
	s4.Subscribe(t, "r/2", 1)
	if d := s4.DeliveredData(); len(d) != 1 || d[0] != "v2'" || !s4.Deliveries[0].Retain {
		t.Fatalf("replaced retained: %+v", s4.Deliveries)
	}
}

func TestRetainedMax(t *testing.T) {
	n := newNet(t, broker.Config{MaxRetained: 1})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	for i, name := range []string{"r/1", "r/2"} {
		p := publishPkt(1, packet.TopicNormal, pub.Register(t, name), uint16(100+i), "v")
		p.Flags |= packet.FlagRetain
		pub.Send(p)
		pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	}
	if s := n.Stats(); s.Retained != 1 || s.Drops[broker.DropRetainedFull] != 1 || s.LimitsHit[broker.LimitRetained] != 1 {
		t.Fatalf("Retained = %d, drops %d, limits %d", s.Retained, s.Drops[broker.DropRetainedFull], s.LimitsHit[broker.LimitRetained])
	}
}

func TestShortTopicWithWildcardRefused(t *testing.T) {
	// A short topic name is a topic name: "a#" or "+b" would be wildcards in one.
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "#", 1)
	c := n.NewClient("c", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	for _, name := range []string{"a#", "+b", "++"} {
		id := topic.ShortID(name)
		c.Send(publishPkt(1, packet.TopicShort, id, 1, "x"))
		c.Expect(t, packet.PUBACK, brokertest.RC(packet.InvalidTopicID))
		c.Send(publishPkt(packet.QoSMinus1, packet.TopicShort, id, 0, "x"))
		c.ExpectNothing(t)
		if p := c.SubscribeID(t, packet.TopicShort, id, 1); p.ReturnCode == packet.Accepted {
			t.Errorf("SUBSCRIBE to short %q accepted: %s", name, brokertest.Describe(&p))
		}
	}
	if len(sub.Deliveries) != 0 {
		t.Errorf("delivered on a topic name with a wildcard: %+v", sub.Deliveries)
	}
	if s := n.Stats(); s.Topics != 0 {
		t.Errorf("Topics = %d: short names must not take normal topic ids", s.Topics)
	}
}
