package packet

import "encoding/binary"

// Packet is one decoded MQTT-SN message. It is a flat union: Type says which fields are
// meaningful (the per-type files list them). Byte slices alias the decoded datagram, so
// a Packet is valid only as long as that datagram's buffer is.
//
// A flat struct rather than one type per message keeps decoding allocation-free (no
// interface boxing) and lets the broker reuse one Packet per datagram.
type Packet struct {
	Type  Type
	Flags Flags

	// Forwarder encapsulation (5.5): set when the message arrived inside, or is to be
	// sent inside, an ENCAPSULATED message.
	Encapsulated bool
	Radius       uint8  // Ctrl octet bits 1-0 (broadcast radius)
	NodeID       []byte // wireless node id

	GwID        uint8      // ADVERTISE, GWINFO
	GwAddr      []byte     // GWINFO (optional, sent by clients only)
	Duration    uint16     // ADVERTISE, CONNECT (keep-alive), DISCONNECT (sleep)
	HasDuration bool       // DISCONNECT: the Duration field is present
	Radius2     uint8      // SEARCHGW radius
	ProtocolID  uint8      // CONNECT
	ClientID    []byte     // CONNECT, PINGREQ (optional)
	ReturnCode  ReturnCode // CONNACK, REGACK, PUBACK, SUBACK, WILLTOPICRESP, WILLMSGRESP
	TopicID     uint16     // REGISTER, REGACK, PUBLISH, PUBACK, SUBACK, SUBSCRIBE/UNSUBSCRIBE by id
	MsgID       uint16     // REGISTER, REGACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, (UN)SUBSCRIBE, (UN)SUBACK
	TopicName   []byte     // REGISTER; SUBSCRIBE/UNSUBSCRIBE with TopicIdType normal
	WillTopic   []byte     // WILLTOPIC, WILLTOPICUPD (empty: delete the will)
	WillMsg     []byte     // WILLMSG, WILLMSGUPD
	Data        []byte     // PUBLISH payload
}

// Reset clears p for reuse.
func (p *Packet) Reset() { *p = Packet{} }

// header reads the Length and MsgType fields of b: it returns the header length, the
// message length and the type. It checks the length against len(b) exactly.
func header(b []byte) (hdr int, t Type, err error) {
	if len(b) < 2 {
		return 0, 0, errorf(0, ReasonShort, len(b), 2, "datagram of %d octets is shorter than a header", len(b))
	}
	n := int(b[0])
	hdr = 2
	if b[0] == 0x01 {
		if len(b) < 4 {
			return 0, 0, errorf(0, ReasonShort, len(b), 4, "datagram of %d octets is shorter than a 3-octet-length header", len(b))
		}
		n = int(binary.BigEndian.Uint16(b[1:3]))
		hdr = 4
		t = Type(b[3])
	} else {
		t = Type(b[1])
	}
	if n < hdr {
		return 0, t, errorf(t, ReasonLength, n, hdr, "length field %d is smaller than its own header (%d)", n, hdr)
	}
	if t == ENCAPSULATED {
		// The encapsulation's Length covers only its own header (5.5).
		if n > len(b) {
			return 0, t, errorf(t, ReasonLength, n, len(b), "length field %d exceeds the %d-octet datagram", n, len(b))
		}
		return hdr, t, nil
	}
	if n != len(b) {
		return 0, t, errorf(t, ReasonLength, n, len(b), "length field %d but datagram has %d octets", n, len(b))
	}
	return hdr, t, nil
}

// Decode decodes the datagram b into p, overwriting it. An ENCAPSULATED message is
// unwrapped: p then describes the inner message with Encapsulated, Radius and NodeID set.
// A malformed datagram returns an *Error and leaves p in an unspecified state.
func Decode(b []byte, p *Packet) error {
	*p = Packet{}
	hdr, t, err := header(b)
	if err != nil {
		return err
	}
	if t == ENCAPSULATED {
		return decodeEncapsulated(b, hdr, p)
	}
	p.Type = t
	return decodeBody(t, b[hdr:], p)
}

func decodeBody(t Type, body []byte, p *Packet) error {
	switch t {
	case ADVERTISE:
		return decodeAdvertise(body, p)
	case SEARCHGW:
		return decodeSearchGW(body, p)
	case GWINFO:
		return decodeGWInfo(body, p)
	case CONNECT:
		return decodeConnect(body, p)
	case CONNACK, WILLTOPICRESP, WILLMSGRESP:
		return decodeReturnCode(t, body, p)
	case WILLTOPICREQ, WILLMSGREQ, PINGRESP:
		return decodeEmpty(t, body)
	case WILLTOPIC, WILLTOPICUPD:
		return decodeWillTopic(t, body, p)
	case WILLMSG, WILLMSGUPD:
		p.WillMsg = body
		return nil
	case REGISTER:
		return decodeRegister(body, p)
	case REGACK:
		return decodeRegack(body, p)
	case PUBLISH:
		return decodePublish(body, p)
	case PUBACK:
		return decodePuback(body, p)
	case PUBREC, PUBREL, PUBCOMP, UNSUBACK:
		return decodeMsgIDOnly(t, body, p)
	case SUBSCRIBE, UNSUBSCRIBE:
		return decodeSubscribe(t, body, p)
	case SUBACK:
		return decodeSuback(body, p)
	case PINGREQ:
		p.ClientID = body
		return nil
	case DISCONNECT:
		return decodeDisconnect(body, p)
	}
	return errorf(t, ReasonReservedType, int(t), 0, "message type 0x%02x is reserved", uint8(t))
}

// Append encodes p and appends it to dst. Fields not used by p.Type are ignored. If
// p.Encapsulated is set, the message is wrapped in an ENCAPSULATED header carrying
// p.Radius and p.NodeID. Append does not validate: it encodes what it is given (the
// broker builds only valid packets), so tests can also build malformed ones.
func Append(dst []byte, p *Packet) []byte {
	if p.Encapsulated {
		dst = AppendEncapsulationHeader(dst, p.Radius, p.NodeID)
	}
	n := 2 + bodyLen(p)
	if n > 255 {
		dst = append(dst, 0x01, byte((n+2)>>8), byte(n+2), byte(p.Type))
	} else {
		dst = append(dst, byte(n), byte(p.Type))
	}
	return appendBody(dst, p)
}

// Len returns the encoded length of p, without any encapsulation.
func Len(p *Packet) int {
	n := 2 + bodyLen(p)
	if n > 255 {
		n += 2
	}
	return n
}

func bodyLen(p *Packet) int {
	switch p.Type {
	case ADVERTISE:
		return 3
	case SEARCHGW:
		return 1
	case GWINFO:
		return 1 + len(p.GwAddr)
	case CONNECT:
		return 4 + len(p.ClientID)
	case CONNACK, WILLTOPICRESP, WILLMSGRESP:
		return 1
	case WILLTOPIC, WILLTOPICUPD:
		if len(p.WillTopic) == 0 {
			return 0
		}
		return 1 + len(p.WillTopic)
	case WILLMSG, WILLMSGUPD:
		return len(p.WillMsg)
	case REGISTER:
		return 4 + len(p.TopicName)
	case REGACK, PUBACK:
		return 5
	case PUBLISH:
		return 5 + len(p.Data)
	case PUBREC, PUBREL, PUBCOMP, UNSUBACK:
		return 2
	case SUBSCRIBE, UNSUBSCRIBE:
		if p.Flags.TopicIDType() == TopicNormal {
			return 3 + len(p.TopicName)
		}
		return 5
	case SUBACK:
		return 6
	case PINGREQ:
		return len(p.ClientID)
	case DISCONNECT:
		if p.HasDuration {
			return 2
		}
	}
	return 0
}

func appendBody(dst []byte, p *Packet) []byte {
	switch p.Type {
	case ADVERTISE:
		return binary.BigEndian.AppendUint16(append(dst, p.GwID), p.Duration)
	case SEARCHGW:
		return append(dst, p.Radius2)
	case GWINFO:
		return append(append(dst, p.GwID), p.GwAddr...)
	case CONNECT:
		dst = append(dst, byte(p.Flags), p.ProtocolID)
		dst = binary.BigEndian.AppendUint16(dst, p.Duration)
		return append(dst, p.ClientID...)
	case CONNACK, WILLTOPICRESP, WILLMSGRESP:
		return append(dst, byte(p.ReturnCode))
	case WILLTOPIC, WILLTOPICUPD:
		if len(p.WillTopic) == 0 {
			return dst
		}
		return append(append(dst, byte(p.Flags)), p.WillTopic...)
	case WILLMSG, WILLMSGUPD:
		return append(dst, p.WillMsg...)
	case REGISTER:
		dst = binary.BigEndian.AppendUint16(dst, p.TopicID)
		dst = binary.BigEndian.AppendUint16(dst, p.MsgID)
		return append(dst, p.TopicName...)
	case REGACK, PUBACK:
		dst = binary.BigEndian.AppendUint16(dst, p.TopicID)
		dst = binary.BigEndian.AppendUint16(dst, p.MsgID)
		return append(dst, byte(p.ReturnCode))
	case PUBLISH:
		dst = append(dst, byte(p.Flags))
		dst = binary.BigEndian.AppendUint16(dst, p.TopicID)
		dst = binary.BigEndian.AppendUint16(dst, p.MsgID)
		return append(dst, p.Data...)
	case PUBREC, PUBREL, PUBCOMP, UNSUBACK:
		return binary.BigEndian.AppendUint16(dst, p.MsgID)
	case SUBSCRIBE, UNSUBSCRIBE:
		dst = append(dst, byte(p.Flags))
		dst = binary.BigEndian.AppendUint16(dst, p.MsgID)
		if p.Flags.TopicIDType() == TopicNormal {
			return append(dst, p.TopicName...)
		}
		return binary.BigEndian.AppendUint16(dst, p.TopicID)
	case SUBACK:
		dst = append(dst, byte(p.Flags))
		dst = binary.BigEndian.AppendUint16(dst, p.TopicID)
		dst = binary.BigEndian.AppendUint16(dst, p.MsgID)
		return append(dst, byte(p.ReturnCode))
	case PINGREQ:
		return append(dst, p.ClientID...)
	case DISCONNECT:
		if p.HasDuration {
			return binary.BigEndian.AppendUint16(dst, p.Duration)
		}
	}
	return dst
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func need(t Type, body []byte, n int) error {
	if len(body) < n {
		return errorf(t, ReasonShort, len(body)+2, n+2, "%d octets, need at least %d", len(body)+2, n+2)
	}
	return nil
}

func exact(t Type, body []byte, n int) error {
	if len(body) < n {
		return need(t, body, n)
	}
	if len(body) > n {
		return errorf(t, ReasonLong, len(body)+2, n+2, "%d octets, must be exactly %d", len(body)+2, n+2)
	}
	return nil
}
