package packet

import (
	"slices"
	"strings"
)

// Independent readings of the wire format: scapy's scapy.contrib.mqttsn (Debian
// python3-scapy) and Wireshark's MQTT-SN dissector (Debian tshark). Nobody on this team
// wrote either. Where one of them disagrees with the spec, a comment cites the section,
// and the test logs the disagreement for that message instead of failing: the codec
// follows the spec, not the tool.
//
// Known disagreements (scapy 2.5.0, tshark 4.0.17):
//   - scapy builds a DISCONNECT without Duration as 02 18 00 00 (Length 2, four octets);
//   - scapy takes a 3-octet Length to mean a message of 256 octets or more: an
//     encapsulation header in the 3-octet form with a short length (01 0007 fe ...) has
//     the inner message swallowed into its Wireless Node Id;
//   - tshark reads a Flags octet in the 2-octet empty WILLTOPIC and WILLTOPICUPD (5.4.7,
//     5.4.22) and calls them malformed;
//   - tshark reads the Wireless Node Id as a 2-octet integer (5.5 makes it variable).

// interopCases: every valid case, and the 3-octet Length in both positions.
func interopCases() []codecCase {
	cases := slices.Clone(validCases)
	long := Packet{Type: PUBLISH, Flags: 0x20, TopicID: 0x0102, MsgID: 0x0304, Data: []byte(strings.Repeat("0123456789", 30))}
	cases = append(cases, codecCase{name: "PUBLISH 3-octet length", p: long})
	long.Encapsulated, long.Radius, long.NodeID = true, 2, []byte{0x12, 0x34}
	cases = append(cases, codecCase{name: "ENCAPSULATED PUBLISH 3-octet length", p: long})
	return cases
}
