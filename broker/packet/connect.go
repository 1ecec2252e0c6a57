package packet

// CONNECT (5.4.4): Flags (Will, CleanSession), ProtocolId, Duration, ClientId.
// The ClientId's length rule (1-23 octets) and the ProtocolId value are checked by the
// broker, which answers them with a CONNACK rather than dropping the datagram.
func decodeConnect(body []byte, p *Packet) error {
	if err := need(CONNECT, body, 4); err != nil {
		return err
	}
	p.Flags, p.ProtocolID, p.Duration = Flags(body[0]), body[1], be16(body[2:])
	p.ClientID = body[4:]
	return nil
}

// CONNACK, WILLTOPICRESP, WILLMSGRESP (5.4.5, 5.4.23, 5.4.25): ReturnCode.
func decodeReturnCode(t Type, body []byte, p *Packet) error {
	if err := exact(t, body, 1); err != nil {
		return err
	}
	p.ReturnCode = ReturnCode(body[0])
	return nil
}

// WILLTOPICREQ, WILLMSGREQ, PINGRESP carry nothing but the header.
func decodeEmpty(t Type, body []byte) error { return exact(t, body, 0) }

// WILLTOPIC, WILLTOPICUPD (5.4.7, 5.4.22): Flags (QoS, Retain), WillTopic. A message of
// header only is the "empty" form that deletes the will.
func decodeWillTopic(t Type, body []byte, p *Packet) error {
	if len(body) == 0 {
		return nil
	}
	p.Flags, p.WillTopic = Flags(body[0]), body[1:]
	if p.Flags.QoS() == QoSMinus1 {
		return errorf(t, ReasonFlags, -1, 0, "will QoS -1 is not allowed")
	}
	return nil
}
