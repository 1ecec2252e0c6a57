package packet

// ADVERTISE (5.4.1): GwId, Duration (seconds until the next ADVERTISE).
func decodeAdvertise(body []byte, p *Packet) error {
	if err := exact(ADVERTISE, body, 3); err != nil {
		return err
	}
	p.GwID, p.Duration = body[0], be16(body[1:])
	return nil
}

// SEARCHGW (5.4.2): Radius. Stored in Radius2 so it never mixes with the
// encapsulation's radius.
func decodeSearchGW(body []byte, p *Packet) error {
	if err := exact(SEARCHGW, body, 1); err != nil {
		return err
	}
	p.Radius2 = body[0]
	return nil
}

// GWINFO (5.4.3): GwId and, when sent by a client answering for a gateway, GwAdd.
func decodeGWInfo(body []byte, p *Packet) error {
	if err := need(GWINFO, body, 1); err != nil {
		return err
	}
	p.GwID, p.GwAddr = body[0], body[1:]
	return nil
}
