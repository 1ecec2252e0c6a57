package topic

// IsShortName reports whether name is an MQTT-SN short topic name: exactly two octets,
// neither of them a wildcard. (Any two octets are allowed on the wire; whether a short
// name is also a valid UTF-8 topic name is ValidateName's question.)
func IsShortName(name string) bool {
	return len(name) == 2 && !isWildcardOctet(name[0]) && !isWildcardOctet(name[1])
}

func isWildcardOctet(c byte) bool { return c == '+' || c == '#' }

// ShortID returns the 16-bit topic id field that carries the short topic name name: the
// first octet is the high octet (network order). name should be IsShortName; ShortID
// reads only its first two octets and treats missing ones as zero.
func ShortID(name string) uint16 {
	var hi, lo byte
	if len(name) > 0 {
		hi = name[0]
	}
	if len(name) > 1 {
		lo = name[1]
	}
	return uint16(hi)<<8 | uint16(lo)
}

// ShortName returns the two-octet short topic name carried in a topic id field. It
// allocates; the broker interns names it keeps.
func ShortName(id uint16) string {
	return string([]byte{byte(id >> 8), byte(id)})
}
