package packet

// REGISTER (5.4.10): TopicId (0 from a client), MsgId, TopicName.
func decodeRegister(body []byte, p *Packet) error {
	if err := need(REGISTER, body, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.TopicName = be16(body), be16(body[2:]), body[4:]
	return nil
}

// REGACK (5.4.11): TopicId, MsgId, ReturnCode.
func decodeRegack(body []byte, p *Packet) error {
	if err := exact(REGACK, body, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = be16(body), be16(body[2:]), ReturnCode(body[4])
	return nil
}

// PUBLISH (5.4.12): Flags (DUP, QoS, Retain, TopicIdType), TopicId, MsgId, Data.
// With TopicIdType "short" the TopicId octets are the two characters of the name.
func decodePublish(body []byte, p *Packet) error {
	if err := need(PUBLISH, body, 5); err != nil {
		return err
	}
	p.Flags, p.TopicID, p.MsgID, p.Data = Flags(body[0]), be16(body[1:]), be16(body[3:]), body[5:]
	if p.Flags.TopicIDType() == topicReserved {
		return errorf(PUBLISH, ReasonTopicIDType, 3, 0, "TopicIdType 0b11 is reserved")
	}
	return nil
}

// PUBACK (5.4.13): TopicId, MsgId, ReturnCode.
func decodePuback(body []byte, p *Packet) error {
	if err := exact(PUBACK, body, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = be16(body), be16(body[2:]), ReturnCode(body[4])
	return nil
}

// PUBREC, PUBREL, PUBCOMP, UNSUBACK (5.4.14, 5.4.18): MsgId.
func decodeMsgIDOnly(t Type, body []byte, p *Packet) error {
	if err := exact(t, body, 2); err != nil {
		return err
	}
	p.MsgID = be16(body)
	return nil
}
