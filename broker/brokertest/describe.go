package brokertest

import (
	"fmt"
	"strings"

	"github.com/musqratt/musqratt/broker/packet"
)

// Describe renders a decoded packet as one short line, for failure messages and
// transcript annotations: the type, then the fields that type carries.
func Describe(p *packet.Packet) string {
	var b strings.Builder
	if p.Encapsulated {
		fmt.Fprintf(&b, "fwd(node=%x r=%d) ", p.NodeID, p.Radius)
	}
	b.WriteString(p.Type.String())
	f := func(format string, args ...any) { fmt.Fprintf(&b, " "+format, args...) }
	switch p.Type {
	case packet.ADVERTISE:
		f("gw=%d duration=%d", p.GwID, p.Duration)
	case packet.SEARCHGW:
		f("radius=%d", p.Radius2)
	case packet.GWINFO:
		f("gw=%d", p.GwID)
		if len(p.GwAddr) > 0 {
			f("addr=%x", p.GwAddr)
		}
	case packet.CONNECT:
		f("id=%q %s proto=%d duration=%d", p.ClientID, flags(p.Flags), p.ProtocolID, p.Duration)
	case packet.CONNACK, packet.WILLTOPICRESP, packet.WILLMSGRESP:
		f("rc=%d", p.ReturnCode)
	case packet.WILLTOPIC, packet.WILLTOPICUPD:
		if len(p.WillTopic) == 0 {
			f("(empty)")
		} else {
			f("%q qos=%d%s", p.WillTopic, p.Flags.QoS(), retain(p.Flags))
		}
	case packet.WILLMSG, packet.WILLMSGUPD:
		f("%q", p.WillMsg)
	case packet.REGISTER:
		f("topic=%d msg=%d %q", p.TopicID, p.MsgID, p.TopicName)
	case packet.REGACK, packet.PUBACK:
		f("topic=%d msg=%d rc=%d", p.TopicID, p.MsgID, p.ReturnCode)
	case packet.PUBLISH:
		f("%s topic=%s msg=%d %q", flags(p.Flags), topicRef(p.Flags.TopicIDType(), p.TopicID), p.MsgID, p.Data)
	case packet.PUBREC, packet.PUBREL, packet.PUBCOMP, packet.UNSUBACK:
		f("msg=%d", p.MsgID)
	case packet.SUBSCRIBE, packet.UNSUBSCRIBE:
		if p.Flags.TopicIDType() == packet.TopicNormal {
			f("%s msg=%d %q", flags(p.Flags), p.MsgID, p.TopicName)
		} else {
			f("%s msg=%d topic=%s", flags(p.Flags), p.MsgID, topicRef(p.Flags.TopicIDType(), p.TopicID))
		}
	case packet.SUBACK:
		f("qos=%d topic=%d msg=%d rc=%d", p.Flags.QoS(), p.TopicID, p.MsgID, p.ReturnCode)
	case packet.PINGREQ:
		if len(p.ClientID) > 0 {
			f("id=%q", p.ClientID)
		}
	case packet.DISCONNECT:
		if p.HasDuration {
			f("duration=%d", p.Duration)
		}
	}
	return b.String()
}

// DescribeBytes decodes b and describes it, or says why it does not decode.
func DescribeBytes(b []byte) string {
	var p packet.Packet
	if err := packet.Decode(b, &p); err != nil {
		return fmt.Sprintf("malformed %x: %v", b, err)
	}
	return Describe(&p)
}

func flags(f packet.Flags) string {
	var parts []string
	if f.DUP() {
		parts = append(parts, "dup")
	}
	parts = append(parts, fmt.Sprintf("q%d", f.QoS()))
	if f.Retain() {
		parts = append(parts, "retain")
	}
	if f.Will() {
		parts = append(parts, "will")
	}
	if f.CleanSession() {
		parts = append(parts, "clean")
	}
	return strings.Join(parts, ",")
}

func retain(f packet.Flags) string {
	if f.Retain() {
		return " retain"
	}
	return ""
}

func topicRef(t packet.TopicIDType, id uint16) string {
	switch t {
	case packet.TopicPredefined:
		return fmt.Sprintf("pre:%d", id)
	case packet.TopicShort:
		return fmt.Sprintf("short:%q", []byte{byte(id >> 8), byte(id)})
	}
	return fmt.Sprint(id)
}
