package client

import (
	"strconv"
	"strings"

	"github.com/musqratt/musqratt/broker/packet"
)

// Describe is a one-line summary of p, as `musqratt pub -d` and `sub -d` print each
// packet: its type, then the fields that say what it is for (message id, topic, QoS,
// return code), in mqtt-sn-tools' spirit. It is for people, not for parsing.
func Describe(p *packet.Packet) string {
	var b strings.Builder
	b.WriteString(p.Type.String())
	field := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	num := func(k string, v uint16) { field(k, strconv.Itoa(int(v))) }
	quoted := func(k string, v []byte) { field(k, strconv.Quote(string(v))) }
	flag := func(k string, v bool) {
		if v {
			field(k, "1")
		} else {
			field(k, "0")
		}
	}
	qos := func() { field("qos", strconv.Itoa(int(p.Flags.QoS()))) }
	rc := func() { field("rc", strconv.Quote(p.ReturnCode.String())) }
	// topic is the topic of a PUBLISH or (sub=true) SUBSCRIBE/UNSUBSCRIBE.
	topic := func(sub bool) {
		switch p.Flags.TopicIDType() {
		case packet.TopicNormal:
			if sub {
				quoted("topic", p.TopicName)
			} else {
				num("topic_id", p.TopicID)
			}
		case packet.TopicPredefined:
			num("predefined_id", p.TopicID)
		case packet.TopicShort:
			quoted("short", []byte{byte(p.TopicID >> 8), byte(p.TopicID)})
		default:
			num("reserved_topic_type", p.TopicID)
		}
	}
	switch p.Type {
	case packet.CONNECT:
		quoted("client_id", p.ClientID)
		flag("clean", p.Flags.CleanSession())
		flag("will", p.Flags.Will())
		num("keepalive", p.Duration)
	case packet.CONNACK, packet.WILLTOPICRESP, packet.WILLMSGRESP:
		rc()
	case packet.WILLTOPIC, packet.WILLTOPICUPD:
		quoted("topic", p.WillTopic)
		qos()
		flag("retain", p.Flags.Retain())
	case packet.WILLMSG, packet.WILLMSGUPD:
		field("len", strconv.Itoa(len(p.WillMsg)))
	case packet.REGISTER:
		num("id", p.MsgID)
		num("topic_id", p.TopicID)
		quoted("topic", p.TopicName)
	case packet.REGACK:
		num("id", p.MsgID)
		num("topic_id", p.TopicID)
		rc()
	case packet.PUBLISH:
		num("id", p.MsgID)
		topic(false)
		qos()
		flag("retain", p.Flags.Retain())
		flag("dup", p.Flags.DUP())
		field("len", strconv.Itoa(len(p.Data)))
	case packet.PUBACK:
		num("id", p.MsgID)
		num("topic_id", p.TopicID)
		rc()
	case packet.PUBREC, packet.PUBREL, packet.PUBCOMP, packet.UNSUBACK:
		num("id", p.MsgID)
	case packet.SUBSCRIBE:
		num("id", p.MsgID)
		topic(true)
		qos()
		flag("dup", p.Flags.DUP())
	case packet.UNSUBSCRIBE:
		num("id", p.MsgID)
		topic(true)
	case packet.SUBACK:
		num("id", p.MsgID)
		qos()
		num("topic_id", p.TopicID)
		rc()
	case packet.PINGREQ:
		if len(p.ClientID) > 0 {
			quoted("client_id", p.ClientID)
		}
	case packet.DISCONNECT:
		if p.HasDuration {
			num("duration", p.Duration)
		}
	case packet.ADVERTISE:
		num("gw_id", uint16(p.GwID))
		num("duration", p.Duration)
	case packet.GWINFO:
		num("gw_id", uint16(p.GwID))
	case packet.SEARCHGW:
		num("radius", uint16(p.Radius2))
	}
	return b.String()
}

// QoSMinus1Packet is the PUBLISH PublishQoSMinus1 sends: to trace it, or to send it
// some other way.
func QoSMinus1Packet(t Topic, payload []byte, retain bool) (packet.Packet, error) {
	if err := checkQoSMinus1(t); err != nil {
		return packet.Packet{}, err
	}
	id := t.ID
	if t.Type == packet.TopicShort {
		id = shortID(t.Name)
	}
	return packet.Packet{Type: packet.PUBLISH,
		Flags: packet.Flags(0).WithQoS(packet.QoSMinus1).WithTopicIDType(t.Type) | retainFlag(retain), TopicID: id, Data: payload}, nil
}
