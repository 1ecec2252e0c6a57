package broker_test

import (
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestMalformedCountedAndDropped(t *testing.T) {
	cases := []struct {
		name   string
		b      []byte
		reason packet.Reason
	}{
		{"empty", nil, packet.ReasonShort},
		{"one octet", []byte{0x05}, packet.ReasonShort},
		{"long form cut short", []byte{0x01, 0x00}, packet.ReasonShort},
		{"length says 3, datagram 2", []byte{0x03, 0x16}, packet.ReasonLength},
		{"length says 2, datagram 3", []byte{0x02, 0x16, 0x00}, packet.ReasonLength},
		{"long length smaller than its header", []byte{0x01, 0x00, 0x03, 0x16}, packet.ReasonLength},
		{"reserved type 0x03", []byte{0x02, 0x03}, packet.ReasonReservedType},
		{"reserved type 0x11", []byte{0x02, 0x11}, packet.ReasonReservedType},
		{"CONNECT without its fields", []byte{0x03, 0x04, 0x04}, packet.ReasonShort},
		{"PUBACK too long", []byte{0x08, 0x0d, 0, 1, 0, 1, 0, 0}, packet.ReasonLong},
		{"PUBLISH with TopicIdType 0b11", []byte{0x07, 0x0c, 0x23, 0, 1, 0, 1}, packet.ReasonTopicIDType},
		{"SUBSCRIBE with TopicIdType 0b11", []byte{0x07, 0x12, 0x03, 0, 1, 0, 1}, packet.ReasonTopicIDType},
		{"WILLTOPIC with QoS -1", []byte{0x04, 0x07, 0x60, 'a'}, packet.ReasonFlags},
		{"DISCONNECT of 3 octets", []byte{0x03, 0x18, 0x00}, packet.ReasonLength},
		{"nested encapsulation", []byte{0x03, 0xfe, 0x01, 0x03, 0xfe, 0x01, 0x02, 0x16}, packet.ReasonEncapsulation},
		{"encapsulation without Ctrl", []byte{0x02, 0xfe, 0x02, 0x16}, packet.ReasonEncapsulation},
		{"encapsulating a malformed message", []byte{0x03, 0xfe, 0x01, 0x05, 0x16}, packet.ReasonLength},
	}
	n := newNet(t, broker.Config{})
	stranger := n.NewClient("stranger", addr1)
	member := n.NewClient("member", addr2)
	member.Connect(t, brokertest.ConnectOptions{KeepAlive: 60})
	want := map[packet.Reason]uint64{}
	for _, tc := range cases {
		var p packet.Packet
		if got := packet.ReasonOf(packet.Decode(tc.b, &p)); got != tc.reason {
			t.Errorf("%s: the codec says %v, this test expects %v", tc.name, got, tc.reason)
		}
		for _, c := range []*brokertest.Client{stranger, member} {
			c.SendRaw(tc.b)
			c.ExpectNothing(t)
			want[tc.reason]++
		}
	}
	s := n.Stats()
	var total uint64
	for r, w := range want {
		if s.MalformedByReason[r] != w {
			t.Errorf("MalformedByReason[%v] = %d, want %d", r, s.MalformedByReason[r], w)
		}
		total += w
	}
	if s.Drops[broker.DropMalformed] != total {
		t.Errorf("Drops[malformed] = %d, want %d", s.Drops[broker.DropMalformed], total)
	}
	if _, sessions := clients(s); sessions != 1 {
		t.Errorf("sessions = %d, want the member's only", sessions)
	}
	// The member's session is untouched by garbage.
	member.Send(pingPkt(""))
	member.Expect(t, packet.PINGRESP)
}

func TestUnexpectedMessagesDropped(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	for _, p := range []packet.Packet{
		{Type: packet.CONNACK},
		{Type: packet.WILLTOPICREQ},
		{Type: packet.WILLMSGREQ},
		{Type: packet.SUBACK},
		{Type: packet.UNSUBACK, MsgID: 1},
		{Type: packet.WILLTOPICRESP},
		{Type: packet.WILLMSGRESP},
		{Type: packet.ADVERTISE, GwID: 3, Duration: 60},
		{Type: packet.GWINFO, GwID: 3},
	} {
		c.Send(p)
		c.ExpectNothing(t)
	}
	if s := n.Stats(); s.Drops[broker.DropUnexpected] != 7 {
		t.Errorf("Drops[unexpected] = %d, want 7 (ADVERTISE and GWINFO from other gateways are ignored, not counted)", s.Drops[broker.DropUnexpected])
	}
	n.Advance(time.Hour)
	wantState(t, n, broker.StateActive, 1)
}
