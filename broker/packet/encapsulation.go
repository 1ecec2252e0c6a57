package packet

// The forwarder encapsulation (5.5): Length, MsgType 0xFE, Ctrl (bits 1-0: radius), the
// wireless node id, then a complete MQTT-SN message. Its Length covers only the
// encapsulation header up to the end of the node id.

func decodeEncapsulated(b []byte, hdr int, p *Packet) error {
	n := int(b[0])
	if hdr == 4 {
		n = int(be16(b[1:3]))
	}
	if n < hdr+1 {
		return errorf(ENCAPSULATED, ReasonEncapsulation, n, hdr+1, "length %d leaves no room for the Ctrl octet", n)
	}
	ctrl := b[hdr]
	nodeID := b[hdr+1 : n]
	inner := b[n:]
	// The inner MsgType is octet 1, or octet 3 after a 3-octet Length (whose octet 1 is
	// part of the length, not a type).
	if len(inner) >= 2 && (inner[0] != 0x01 && inner[1] == byte(ENCAPSULATED) || inner[0] == 0x01 && len(inner) >= 4 && inner[3] == byte(ENCAPSULATED)) {
		return errorf(ENCAPSULATED, ReasonEncapsulation, 0, 0, "nested encapsulation")
	}
	ihdr, t, err := header(inner)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.Detail = "encapsulated message: " + e.Detail
		}
		return err
	}
	p.Type = t
	if err := decodeBody(t, inner[ihdr:], p); err != nil {
		return err
	}
	p.Encapsulated, p.Radius, p.NodeID = true, ctrl&0x03, nodeID
	return nil
}

// AppendEncapsulationHeader appends the header of an ENCAPSULATED message (radius and
// wireless node id); the complete inner message follows it.
func AppendEncapsulationHeader(dst []byte, radius uint8, nodeID []byte) []byte {
	n := 3 + len(nodeID)
	if n > 255 {
		dst = append(dst, 0x01, byte((n+2)>>8), byte(n+2), byte(ENCAPSULATED))
	} else {
		dst = append(dst, byte(n), byte(ENCAPSULATED))
	}
	return append(append(dst, radius&0x03), nodeID...)
}
