package relay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

var (
	pub  = netip.MustParseAddrPort("10.0.0.2:4000")
	sub1 = netip.MustParseAddrPort("10.0.0.2:4001")
	sub2 = netip.MustParseAddrPort("[fd00::2]:4002")
)

func send(t *testing.T, r *Relay, from netip.AddrPort, p *packet.Packet) []broker.Datagram {
	t.Helper()
	return r.Receive(time.Time{}, broker.Datagram{Addr: from, B: packet.Append(nil, p), Mark: 7}, nil)
}

func decode(t *testing.T, d broker.Datagram) *packet.Packet {
	t.Helper()
	var p packet.Packet
	if err := packet.Decode(d.B, &p); err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	return &p
}

// Every answer the bench's client needs, and each PUBLISH forwarded unchanged to every
// subscriber but its sender, acknowledged as its QoS asks, carrying the input's mark.
func TestRelayFlows(t *testing.T) {
	var r Relay
	for _, c := range []struct {
		in   packet.Packet
		want packet.Type
	}{
		{packet.Packet{Type: packet.CONNECT, ClientID: []byte("a"), Duration: 60}, packet.CONNACK},
		{packet.Packet{Type: packet.REGISTER, MsgID: 3, TopicName: []byte("t")}, packet.REGACK},
		{packet.Packet{Type: packet.PINGREQ}, packet.PINGRESP},
	} {
		out := send(t, &r, pub, &c.in)
		if len(out) != 1 || out[0].Addr != pub || decode(t, out[0]).Type != c.want || out[0].Mark != 7 {
			t.Errorf("%v: got %d datagrams", c.in.Type, len(out))
		}
	}
	for _, s := range []netip.AddrPort{sub1, sub2, sub1} { // a second SUBSCRIBE adds nothing
		out := send(t, &r, s, &packet.Packet{Type: packet.SUBSCRIBE, MsgID: 9, TopicName: []byte("t")})
		if p := decode(t, out[0]); p.Type != packet.SUBACK || p.MsgID != 9 {
			t.Errorf("subscribe: %+v", p)
		}
	}
	if r.Subscribers() != 2 {
		t.Fatalf("%d subscribers, want 2", r.Subscribers())
	}
	for qos, ack := range map[packet.QoS]packet.Type{packet.QoS0: 0, packet.QoS1: packet.PUBACK, packet.QoS2: packet.PUBREC} {
		in := packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(qos), TopicID: 1, MsgID: 5, Data: []byte("x")})
		out := r.Receive(time.Time{}, broker.Datagram{Addr: pub, B: in, Mark: 7}, nil)
		want := 2
		if ack != 0 {
			want = 3
		}
		if len(out) != want || out[0].Addr != sub1 || out[1].Addr != sub2 || string(out[0].B) != string(in) {
			t.Fatalf("QoS %v: %d datagrams", qos, len(out))
		}
		if ack != 0 {
			if p := decode(t, out[2]); p.Type != ack || p.MsgID != 5 || out[2].Addr != pub {
				t.Errorf("QoS %v: ack %+v", qos, p)
			}
		}
	}
	if out := send(t, &r, sub1, &packet.Packet{Type: packet.PUBREC, MsgID: 5}); decode(t, out[0]).Type != packet.PUBREL {
		t.Error("PUBREC not answered with PUBREL")
	}
	if out := send(t, &r, pub, &packet.Packet{Type: packet.PUBREL, MsgID: 5}); decode(t, out[0]).Type != packet.PUBCOMP {
		t.Error("PUBREL not answered with PUBCOMP")
	}
	send(t, &r, sub1, &packet.Packet{Type: packet.DISCONNECT})
	if r.Subscribers() != 1 {
		t.Errorf("%d subscribers after DISCONNECT, want 1", r.Subscribers())
	}
	if out := r.Receive(time.Time{}, broker.Datagram{Addr: pub, B: []byte{1}}, nil); len(out) != 0 {
		t.Errorf("malformed datagram answered")
	}
}

// The floor allocates nothing per message in steady state.
func TestRelayAllocations(t *testing.T) {
	var r Relay
	send(t, &r, sub1, &packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("t")})
	in := broker.Datagram{Addr: pub, B: packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(packet.QoS1), TopicID: 1, MsgID: 5, Data: []byte("x")})}
	out := make([]broker.Datagram, 0, 8)
	out = r.Receive(time.Time{}, in, out[:0])
	if a := testing.AllocsPerRun(1000, func() { out = r.Receive(time.Time{}, in, out[:0]) }); a != 0 {
		t.Errorf("%.1f allocations per PUBLISH", a)
	}
}
