package broker

import (
	"net/netip"
	"testing"

	"github.com/musqratt/musqratt/broker/packet"
)

func TestAccessControl(t *testing.T) {
	acc := &Access{
		Networks:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		ClientIDs: map[string]bool{"sensor": true, "reader": true},
		Rules: []Rule{
			{Allow: true, Client: "sensor", Action: ActionPublish, Filter: "sensors/#"},
			{Allow: false, Client: "*", Action: ActionSubscribe, Filter: "sensors/secret/#"},
			{Allow: true, Client: "reader", Action: ActionSubscribe, Filter: "sensors/#"},
			{Allow: true, Client: "-", Action: ActionPublish, Filter: "pd"},
		},
	}
	n := newAmpNet(t, Config{Access: acc, Predefined: map[uint16]string{5: "pd", 6: "other"}})
	outside := netip.MustParseAddrPort("192.0.2.1:1")
	sensor := netip.MustParseAddrPort("10.0.0.1:1")
	reader := netip.MustParseAddrPort("[fd00::2]:1")
	stranger := netip.MustParseAddrPort("10.0.0.3:1")

	if got := n.send(outside, connectPkt("sensor", true, 0)); got[0].ReturnCode != packet.NotSupported {
		t.Fatalf("connect from outside the allowed networks: %v", got[0].ReturnCode)
	}
	if got := n.send(stranger, connectPkt("stranger", true, 0)); got[0].ReturnCode != packet.NotSupported {
		t.Fatalf("connect with an unlisted client id: %v", got[0].ReturnCode)
	}
	if got := n.send(sensor, connectPkt("sensor", true, 0)); got[0].ReturnCode != packet.Accepted {
		t.Fatalf("sensor connect: %v", got[0].ReturnCode)
	}
	if got := n.send(reader, connectPkt("reader", true, 0)); got[0].ReturnCode != packet.Accepted {
		t.Fatalf("reader connect: %v", got[0].ReturnCode)
	}
	subscribe := func(filter string) packet.ReturnCode {
		return n.send(reader, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte(filter)})[0].ReturnCode
	}
	for filter, want := range map[string]packet.ReturnCode{
		"sensors/+/temp":     packet.Accepted,
		"sensors/#":          packet.Accepted,
		"#":                  packet.NotSupported, // not covered by sensors/#
		"sensors/secret/key": packet.NotSupported, // the deny rule comes first
		"other":              packet.NotSupported, // no rule matches: denied
	} {
		if got := subscribe(filter); got != want {
			t.Errorf("subscribe %q: %v, want %v", filter, got, want)
		}
	}
	reg := func(name string) uint16 {
		return n.send(sensor, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte(name)})[0].TopicID
	}
	if got := n.send(sensor, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1), MsgID: 2, TopicID: reg("sensors/a/temp"), Data: []byte("1")}); got[0].ReturnCode != packet.Accepted {
		t.Errorf("allowed publish: %v", got[0].ReturnCode)
	}
	if got := n.send(sensor, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1), MsgID: 3, TopicID: reg("actuators/x"), Data: []byte("1")}); got[0].ReturnCode != packet.NotSupported {
		t.Errorf("denied publish: %v", got[0].ReturnCode)
	}
	qm1 := func(from netip.AddrPort, id uint16) {
		n.send(from, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(packet.QoSMinus1).WithTopicIDType(packet.TopicPredefined), TopicID: id, Data: []byte("x")})
	}
	before := n.b.Stats().PublishesIn
	qm1(stranger, 5) // allowed: "-" may publish to pd from an allowed network
	qm1(outside, 5)  // denied: address
	qm1(stranger, 6) // denied: topic
	if got := n.b.Stats().PublishesIn - before; got != 1 {
		t.Errorf("QoS -1 publishes accepted: %d, want 1", got)
	}
}
