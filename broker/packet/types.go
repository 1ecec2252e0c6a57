package packet

import "strconv"

// Type is the MsgType octet of an MQTT-SN message (spec 5.2.2).
type Type uint8

// The MQTT-SN v1.2 message types. Values not listed are reserved.
const (
	ADVERTISE     Type = 0x00
	SEARCHGW      Type = 0x01
	GWINFO        Type = 0x02
	CONNECT       Type = 0x04
	CONNACK       Type = 0x05
	WILLTOPICREQ  Type = 0x06
	WILLTOPIC     Type = 0x07
	WILLMSGREQ    Type = 0x08
	WILLMSG       Type = 0x09
	REGISTER      Type = 0x0A
	REGACK        Type = 0x0B
	PUBLISH       Type = 0x0C
	PUBACK        Type = 0x0D
	PUBCOMP       Type = 0x0E
	PUBREC        Type = 0x0F
	PUBREL        Type = 0x10
	SUBSCRIBE     Type = 0x12
	SUBACK        Type = 0x13
	UNSUBSCRIBE   Type = 0x14
	UNSUBACK      Type = 0x15
	PINGREQ       Type = 0x16
	PINGRESP      Type = 0x17
	DISCONNECT    Type = 0x18
	WILLTOPICUPD  Type = 0x1A
	WILLTOPICRESP Type = 0x1B
	WILLMSGUPD    Type = 0x1C
	WILLMSGRESP   Type = 0x1D
	ENCAPSULATED  Type = 0xFE
)

var typeNames = [256]string{
	ADVERTISE: "ADVERTISE", SEARCHGW: "SEARCHGW", GWINFO: "GWINFO", CONNECT: "CONNECT",
	CONNACK: "CONNACK", WILLTOPICREQ: "WILLTOPICREQ", WILLTOPIC: "WILLTOPIC",
	WILLMSGREQ: "WILLMSGREQ", WILLMSG: "WILLMSG", REGISTER: "REGISTER", REGACK: "REGACK",
	PUBLISH: "PUBLISH", PUBACK: "PUBACK", PUBCOMP: "PUBCOMP", PUBREC: "PUBREC",
	PUBREL: "PUBREL", SUBSCRIBE: "SUBSCRIBE", SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE",
	UNSUBACK: "UNSUBACK", PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT",
	WILLTOPICUPD: "WILLTOPICUPD", WILLTOPICRESP: "WILLTOPICRESP", WILLMSGUPD: "WILLMSGUPD",
	WILLMSGRESP: "WILLMSGRESP", ENCAPSULATED: "ENCAPSULATED",
}

// Types lists every defined message type, in numeric order.
var Types = []Type{
	ADVERTISE, SEARCHGW, GWINFO, CONNECT, CONNACK, WILLTOPICREQ, WILLTOPIC, WILLMSGREQ,
	WILLMSG, REGISTER, REGACK, PUBLISH, PUBACK, PUBCOMP, PUBREC, PUBREL, SUBSCRIBE, SUBACK,
	UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, WILLTOPICUPD, WILLTOPICRESP,
	WILLMSGUPD, WILLMSGRESP, ENCAPSULATED,
}

// Defined reports whether t is a message type of MQTT-SN v1.2.
func (t Type) Defined() bool { return typeNames[t] != "" }

func (t Type) String() string {
	if n := typeNames[t]; n != "" {
		return n
	}
	return "RESERVED(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// ReturnCode is the ReturnCode octet of CONNACK, REGACK, PUBACK, SUBACK and the will
// update responses (spec 5.3.10).
type ReturnCode uint8

const (
	Accepted       ReturnCode = 0x00
	Congestion     ReturnCode = 0x01 // rejected: congestion; the client retries after T_WAIT
	InvalidTopicID ReturnCode = 0x02 // rejected: invalid topic ID
	NotSupported   ReturnCode = 0x03 // rejected: not supported
)

func (r ReturnCode) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Congestion:
		return "rejected: congestion"
	case InvalidTopicID:
		return "rejected: invalid topic ID"
	case NotSupported:
		return "rejected: not supported"
	}
	return "reserved(0x" + strconv.FormatUint(uint64(r), 16) + ")"
}

// TopicIDType is the TopicIdType field of the flags octet (bits 1-0).
type TopicIDType uint8

const (
	TopicNormal     TopicIDType = 0 // a topic id assigned by REGISTER, or a topic name in SUBSCRIBE
	TopicPredefined TopicIDType = 1 // a pre-defined topic id
	TopicShort      TopicIDType = 2 // a two-octet short topic name
	topicReserved   TopicIDType = 3
)

func (t TopicIDType) String() string {
	switch t {
	case TopicNormal:
		return "normal"
	case TopicPredefined:
		return "predefined"
	case TopicShort:
		return "short"
	}
	return "reserved"
}

// QoS is a quality of service level; -1 is MQTT-SN's connectionless publish.
type QoS int8

const (
	QoSMinus1 QoS = -1
	QoS0      QoS = 0
	QoS1      QoS = 1
	QoS2      QoS = 2
)

// Flags is the flags octet (spec 5.3.4).
type Flags uint8

const (
	FlagDUP          Flags = 0x80
	FlagRetain       Flags = 0x10
	FlagWill         Flags = 0x08
	FlagCleanSession Flags = 0x04
	flagQoSMask      Flags = 0x60
	flagTopicMask    Flags = 0x03
)

func (f Flags) DUP() bool          { return f&FlagDUP != 0 }
func (f Flags) Retain() bool       { return f&FlagRetain != 0 }
func (f Flags) Will() bool         { return f&FlagWill != 0 }
func (f Flags) CleanSession() bool { return f&FlagCleanSession != 0 }

// TopicIDType returns bits 1-0.
func (f Flags) TopicIDType() TopicIDType { return TopicIDType(f & flagTopicMask) }

// QoS returns the QoS field; the bit pattern 11 is QoS -1.
func (f Flags) QoS() QoS {
	q := QoS((f & flagQoSMask) >> 5)
	if q == 3 {
		return QoSMinus1
	}
	return q
}

// WithQoS returns f with its QoS field set to q.
func (f Flags) WithQoS(q QoS) Flags {
	bits := Flags(q) & 3
	if q == QoSMinus1 {
		bits = 3
	}
	return f&^flagQoSMask | bits<<5
}

// WithTopicIDType returns f with its TopicIdType field set to t.
func (f Flags) WithTopicIDType(t TopicIDType) Flags { return f&^flagTopicMask | Flags(t)&flagTopicMask }

// ProtocolID is the only protocol id MQTT-SN v1.2 defines (CONNECT, 5.3.7).
const ProtocolID = 0x01

// Reserved topic ids (5.3.11).
const (
	TopicIDReserved0   = 0x0000
	TopicIDReservedMax = 0xFFFF
)

// MaxClientIDLen is the longest ClientId v1.2 allows (5.3.1).
const MaxClientIDLen = 23

// MaxLen is the largest message the 3-octet length form can describe.
const MaxLen = 65535
