package packet

// SUBSCRIBE, UNSUBSCRIBE (5.4.15, 5.4.17): Flags (DUP, QoS, TopicIdType), MsgId, then a
// TopicName (TopicIdType normal) or a 2-octet TopicId (pre-defined) or short name.
func decodeSubscribe(t Type, body []byte, p *Packet) error {
	if err := need(t, body, 3); err != nil {
		return err
	}
	p.Flags, p.MsgID = Flags(body[0]), be16(body[1:])
	rest := body[3:]
	switch p.Flags.TopicIDType() {
	case TopicNormal:
		if len(rest) == 0 {
			return errorf(t, ReasonShort, len(body)+2, len(body)+3, "empty topic name")
		}
		p.TopicName = rest
	case TopicPredefined, TopicShort:
		if err := exact(t, body, 5); err != nil {
			return err
		}
		p.TopicID = be16(rest)
	default:
		return errorf(t, ReasonTopicIDType, 3, 0, "TopicIdType 0b11 is reserved")
	}
	return nil
}

// SUBACK (5.4.16): Flags (granted QoS), TopicId, MsgId, ReturnCode.
func decodeSuback(body []byte, p *Packet) error {
	if err := exact(SUBACK, body, 6); err != nil {
		return err
	}
	p.Flags, p.TopicID, p.MsgID, p.ReturnCode = Flags(body[0]), be16(body[1:]), be16(body[3:]), ReturnCode(body[5])
	return nil
}

// DISCONNECT (5.4.21): an optional Duration; with it the client goes to sleep.
func decodeDisconnect(body []byte, p *Packet) error {
	switch len(body) {
	case 0:
		return nil
	case 2:
		p.Duration, p.HasDuration = be16(body), true
		return nil
	}
	return errorf(DISCONNECT, ReasonLength, len(body)+2, 4, "%d octets, must be 2 or 4", len(body)+2)
}
