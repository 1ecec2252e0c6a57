package broker

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// ampNet feeds a broker and tallies octets per address in each direction, so tests can
// assert the amplification bound: to an address that never proved it receives, the
// broker sends at most 3x what it received from it.
type ampNet struct {
	t        *testing.T
	b        *Broker
	now      time.Time
	rx, tx   map[netip.AddrPort]int // from the broker's point of view
	received map[netip.AddrPort][]packet.Packet
}

func newAmpNet(t *testing.T, cfg Config) *ampNet {
	cfg.AdvertiseInterval = -1
	cfg.Seed = 42
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &ampNet{t: t, b: b, now: time.Unix(1e6, 0), rx: map[netip.AddrPort]int{}, tx: map[netip.AddrPort]int{}, received: map[netip.AddrPort][]packet.Packet{}}
}

func (n *ampNet) send(from netip.AddrPort, p packet.Packet) []packet.Packet {
	n.t.Helper()
	raw := packet.Append(nil, &p)
	n.rx[from] += len(raw)
	return n.deliver(n.b.Receive(n.now, Datagram{Addr: from, B: raw}, nil), from)
}

func (n *ampNet) deliver(out []Datagram, from netip.AddrPort) []packet.Packet {
	var mine []packet.Packet
	for _, d := range out {
		if d.IsBroadcast() {
			n.t.Fatalf("a unicast datagram triggered a broadcast")
		}
		n.tx[d.Addr] += len(d.B)
		var q packet.Packet
		if err := packet.Decode(append([]byte(nil), d.B...), &q); err != nil {
			n.t.Fatal(err)
		}
		n.received[d.Addr] = append(n.received[d.Addr], q)
		if d.Addr == from {
			mine = append(mine, q)
		}
	}
	return mine
}

func (n *ampNet) tick(d time.Duration) {
	n.now = n.now.Add(d)
	n.deliver(n.b.Tick(n.now, nil), netip.AddrPort{})
}

func (n *ampNet) ratio(a netip.AddrPort) float64 {
	if n.rx[a] == 0 {
		if n.tx[a] == 0 {
			return 0
		}
		return float64(n.tx[a])
	}
	return float64(n.tx[a]) / float64(n.rx[a])
}

func connectPkt(id string, clean bool, keepAlive uint16) packet.Packet {
	var f packet.Flags
	if clean {
		f |= packet.FlagCleanSession
	}
	return packet.Packet{Type: packet.CONNECT, Flags: f, ProtocolID: 1, Duration: keepAlive, ClientID: []byte(id)}
}

// TestAmplificationEveryMessageType sends one of every message type, from an address
// with no session and from one with a fresh session, and checks the reply ratio.
func TestAmplificationEveryMessageType(t *testing.T) {
	for _, typ := range packet.Types {
		for _, connected := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/connected=%v", typ, connected), func(t *testing.T) {
				n := newAmpNet(t, Config{Predefined: map[uint16]string{7: "p/t"}})
				victim := netip.MustParseAddrPort("192.0.2.1:4000")
				if connected {
					n.send(victim, connectPkt("c", true, 60))
				}
				p := packet.Packet{Type: typ, MsgID: 1, TopicID: 7, ClientID: []byte("c"), ProtocolID: 1,
					TopicName: []byte("a/b"), WillTopic: []byte("w"), WillMsg: []byte("m"), Data: []byte("x")}
				switch typ {
				case packet.ENCAPSULATED:
					p = connectPkt("e", true, 60)
					p.Encapsulated, p.NodeID = true, []byte{1}
				case packet.PUBLISH, packet.SUBSCRIBE, packet.UNSUBSCRIBE:
					p.Flags = packet.Flags(0).WithTopicIDType(packet.TopicPredefined).WithQoS(1)
				}
				n.send(victim, p)
				if r := n.ratio(victim); r > 3 {
					t.Fatalf("sent %d octets for %d received (%.1fx)", n.tx[victim], n.rx[victim], r)
				}
			})
		}
	}
}

// TestAmplificationSpoofedTakeover: a spoofed CONNECT resuming a persistent session
// with many queued messages must not flush them to the spoofed address.
func TestAmplificationSpoofedTakeover(t *testing.T) {
	n := newAmpNet(t, Config{})
	owner := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	victim := netip.MustParseAddrPort("192.0.2.9:53")
	n.send(owner, connectPkt("sensor", false, 0))
	n.send(owner, packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: 1, TopicName: []byte("big/#")})
	n.send(owner, packet.Packet{Type: packet.DISCONNECT})
	n.send(pub, connectPkt("pub", true, 0))
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("big/data")})[0].TopicID
	for i := 0; i < 50; i++ {
		n.send(pub, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1), TopicID: id, MsgID: uint16(i + 2), Data: make([]byte, 200)})
	}
	n.send(victim, connectPkt("sensor", false, 0))
	for i := 0; i < 20; i++ {
		n.tick(11 * time.Second) // retransmissions must stay within the budget too
	}
	if r := n.ratio(victim); r > 3 {
		t.Fatalf("spoofed takeover: %d octets to the victim for %d received (%.1fx)", n.tx[victim], n.rx[victim], r)
	}
	t.Logf("spoofed takeover: %d octets in, %d out (%.2fx)", n.rx[victim], n.tx[victim], n.ratio(victim))
}

// TestAmplificationSpoofedWakeup: a spoofed PINGREQ with the ClientId of a sleeper
// must not flush its buffer to the spoofed address; the real client still gets it all.
func TestAmplificationSpoofedWakeup(t *testing.T) {
	n := newAmpNet(t, Config{})
	sleeper := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	victim := netip.MustParseAddrPort("192.0.2.9:53")
	n.send(sleeper, connectPkt("s1", true, 0))
	n.send(sleeper, packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(0), MsgID: 1, TopicName: []byte("t/#")})
	n.send(sleeper, packet.Packet{Type: packet.DISCONNECT, HasDuration: true, Duration: 600})
	n.send(pub, connectPkt("pub", true, 0))
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("t/x")})[0].TopicID
	for i := 0; i < 50; i++ {
		n.send(pub, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(0), TopicID: id, Data: make([]byte, 100)})
	}
	n.send(victim, packet.Packet{Type: packet.PINGREQ, ClientID: []byte("s1")})
	if r := n.ratio(victim); r > 3 {
		t.Fatalf("spoofed wake-up: %d octets to the victim for %d received (%.1fx)", n.tx[victim], n.rx[victim], r)
	}
	t.Logf("spoofed wake-up: %d in, %d out (%.2fx)", n.rx[victim], n.tx[victim], n.ratio(victim))
}

// TestAmplificationSpoofedRetainedPull: CONNECT + SUBSCRIBE "#" from a spoofed address
// must not pull every retained message there; a real client answering the REGISTER
// challenges gets them all.
func TestAmplificationSpoofedRetainedPull(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(fmt.Sprintf("real=%v", real), func(t *testing.T) {
			n := newAmpNet(t, Config{})
			pub := netip.MustParseAddrPort("10.0.0.2:1000")
			victim := netip.MustParseAddrPort("192.0.2.9:53")
			n.send(pub, connectPkt("pub", true, 0))
			for i := 0; i < 40; i++ {
				id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprintf("r/%d", i))})[0].TopicID
				n.send(pub, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(0) | packet.FlagRetain, TopicID: id, Data: make([]byte, 150)})
			}
			n.send(victim, connectPkt("x", true, 0))
			got := n.send(victim, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("#")})
			publishes := 0
			for steps := 0; real && steps < 1000 && len(got) > 0; steps++ {
				var next []packet.Packet
				for _, p := range got {
					switch p.Type {
					case packet.REGISTER:
						next = append(next, n.send(victim, packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})...)
					case packet.PUBLISH:
						publishes++
					}
				}
				got = next
			}
			if !real {
				if r := n.ratio(victim); r > 3 {
					t.Fatalf("retained pull: %d octets to the victim for %d received (%.1fx)", n.tx[victim], n.rx[victim], r)
				}
				return
			}
			if publishes != 40 {
				t.Fatalf("a real client answering REGISTER got %d of 40 retained messages", publishes)
			}
		})
	}
}

// TestQoS0SubscriberProvesItselfAndGetsEverything: the budget must not starve an
// honest QoS 0 subscriber; it answers the REGISTER challenge and then receives freely.
func TestQoS0SubscriberProvesItselfAndGetsEverything(t *testing.T) {
	n := newAmpNet(t, Config{})
	sub := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	n.send(sub, connectPkt("sub", true, 0))
	n.send(sub, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("a/b")})
	n.send(pub, connectPkt("pub", true, 0))
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("a/b")})[0].TopicID
	delivered := 0
	for i := 0; i < 100; i++ {
		n.send(pub, packet.Packet{Type: packet.PUBLISH, TopicID: id, Data: make([]byte, 32)})
		for len(n.received[sub]) > 0 {
			p := n.received[sub][0]
			n.received[sub] = n.received[sub][1:]
			switch p.Type {
			case packet.PUBLISH:
				delivered++
			case packet.REGISTER:
				n.send(sub, packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
			}
		}
	}
	if delivered != 100 {
		t.Fatalf("delivered %d of 100 QoS 0 messages to an honest subscriber", delivered)
	}
}

// TestLongTopicToUnprovenSubscriber: a delivery that needs a REGISTER larger than a
// fresh subscriber's budget (a 302-octet topic name) is not stuck: the broker sends the
// short challenge REGISTER (ChallengeTopic) within the budget, and once the client
// answers it the real REGISTER and the message follow (conformance probe).
func TestLongTopicToUnprovenSubscriber(t *testing.T) {
	n := newAmpNet(t, Config{})
	sub := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	n.send(sub, connectPkt("s7", true, 0))
	n.send(sub, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("M/#")})
	n.received[sub] = nil
	n.send(pub, connectPkt("pub", true, 0))
	long := "M/" + strings.Repeat("x", 300)
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte(long)})[0].TopicID
	n.send(pub, packet.Packet{Type: packet.PUBLISH, TopicID: id, Data: []byte("hello")})
	got := n.received[sub]
	if len(got) != 1 || got[0].Type != packet.REGISTER || string(got[0].TopicName) != ChallengeTopic {
		t.Fatalf("to the unproven subscriber: %+v, want one REGISTER %s", got, ChallengeTopic)
	}
	if r := n.ratio(sub); r > 3 {
		t.Fatalf("ratio %.2f to an unproven address", r)
	}
	ch := got[0]
	got = n.send(sub, packet.Packet{Type: packet.REGACK, TopicID: ch.TopicID, MsgID: ch.MsgID})
	if len(got) != 1 || got[0].Type != packet.REGISTER || string(got[0].TopicName) != long {
		t.Fatalf("after the challenge: %+v, want the REGISTER of the long topic", got)
	}
	got = n.send(sub, packet.Packet{Type: packet.REGACK, TopicID: got[0].TopicID, MsgID: got[0].MsgID})
	if len(got) != 1 || got[0].Type != packet.PUBLISH || string(got[0].Data) != "hello" {
		t.Fatalf("after REGACK: %+v", got)
	}
}

// TestBudgetGrowthResumesDeliveries: with the challenge unanswered, deliveries that did
// not fit wait in the queue; each datagram the client sends grows its budget and moves
// the queue again.
func TestBudgetGrowthResumesDeliveries(t *testing.T) {
	n := newAmpNet(t, Config{})
	sub := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	n.send(sub, connectPkt("s8", true, 0))
	n.send(sub, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("a/b")})
	n.send(pub, connectPkt("pub", true, 0))
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("a/b")})[0].TopicID
	for range 10 {
		n.send(pub, packet.Packet{Type: packet.PUBLISH, TopicID: id, Data: make([]byte, 100)})
	}
	count := func() int {
		c := 0
		for _, p := range n.received[sub] {
			if p.Type == packet.PUBLISH {
				c++
			}
		}
		return c
	}
	before := count()
	for range 200 {
		n.send(sub, packet.Packet{Type: packet.PINGREQ})
	}
	after := count()
	if after <= before || after > 10 {
		t.Fatalf("deliveries %d before the client's PINGREQs, %d after; want more after, at most 10", before, after)
	}
	if r := n.ratio(sub); r > 3 {
		t.Fatalf("ratio %.2f to an unproven address", r)
	}
}

// TestUnansweredChallengeKeepsTheClient: a QoS 0 subscriber that ignores the address
// challenge but keeps pinging is alive (6.14): it is not declared lost and its will is
// not published; the challenge is given up and counted, and it keeps getting what fits
// its budget.
func TestUnansweredChallengeKeepsTheClient(t *testing.T) {
	n := newAmpNet(t, Config{RetryInterval: time.Second, MaxRetries: 2})
	sub := netip.MustParseAddrPort("10.0.0.1:1000")
	pub := netip.MustParseAddrPort("10.0.0.2:1000")
	will := packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 60, ClientID: []byte("quiet")}
	n.send(sub, will)
	n.send(sub, packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("wills/quiet")})
	n.send(sub, packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("gone")})
	n.send(sub, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("a/b")})
	n.send(pub, connectPkt("pub", true, 0))
	n.send(pub, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("wills/#")})
	id := n.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 2, TopicName: []byte("a/b")})[0].TopicID
	n.received[sub] = nil
	delivered, challenges := 0, 0
	for i := 0; i < 60; i++ {
		n.send(pub, packet.Packet{Type: packet.PUBLISH, TopicID: id, Data: make([]byte, 20)})
		n.send(sub, packet.Packet{Type: packet.PINGREQ})
		n.tick(500 * time.Millisecond)
	}
	for _, p := range n.received[sub] {
		switch p.Type {
		case packet.PUBLISH:
			delivered++
		case packet.REGISTER:
			challenges++
		case packet.DISCONNECT:
			t.Fatal("the pinging client was disconnected")
		}
	}
	for _, p := range n.received[pub] {
		if p.Type == packet.PUBLISH {
			t.Fatalf("its will was published: %+v", p)
		}
	}
	st := n.b.Stats()
	if st.ClientsByState[StateActive] != 2 {
		t.Errorf("clients by state %v, want both active", st.ClientsByState)
	}
	if st.Drops[DropChallengeUnanswered] == 0 || challenges == 0 {
		t.Errorf("challenges sent %d, given up %d", challenges, st.Drops[DropChallengeUnanswered])
	}
	if delivered == 0 {
		t.Error("nothing delivered within the budget")
	}
	if r := n.ratio(sub); r > 3 {
		t.Errorf("ratio %.2f to an unproven address", r)
	}
	t.Logf("60 publishes: %d delivered within the budget, %d challenges sent, %d given up", delivered, challenges, st.Drops[DropChallengeUnanswered])
}
