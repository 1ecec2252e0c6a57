package packet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tshark's MQTT-SN dissector, fed a capture of our encodings.

// tsharkFields are the dissector's fields the test compares, in -e order.
var tsharkFields = []string{
	"mqttsn.msg.type", "mqttsn.msg.len", "mqttsn.dup", "mqttsn.qos", "mqttsn.retain",
	"mqttsn.will", "mqttsn.clean.session", "mqttsn.topic.id.type", "mqttsn.return.code",
	"mqttsn.gw.id", "mqttsn.gw.addr", "mqttsn.adv.interv", "mqttsn.radius",
	"mqttsn.protocol.id", "mqttsn.keep.alive", "mqttsn.client.id", "mqttsn.topic.id",
	"mqttsn.msg.id", "mqttsn.topic", "mqttsn.topic.name.or.id", "mqttsn.sleep.timer",
	"mqttsn.will.topic", "mqttsn.will.msg", "mqttsn.pub.msg", "mqttsn.control.info",
	"mqttsn.wireless.node.id", "_ws.malformed",
}

// anyValue in a tsharkWant map means "not compared": the dissector shows octet strings
// as text, so only printable ASCII ones are compared.
const anyValue = "\x00any"

func text(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return anyValue
		}
	}
	return string(b)
}

// tsharkWant is what the dissector should show for p (only non-empty fields).
func tsharkWant(p *Packet) map[string]string {
	m := map[string]string{
		"mqttsn.msg.type": fmt.Sprintf("0x%02x", uint8(p.Type)),
		"mqttsn.msg.len":  fmt.Sprint(Len(p)),
	}
	if p.Encapsulated {
		m["mqttsn.msg.type"] = "0xfe," + m["mqttsn.msg.type"]
		m["mqttsn.msg.len"] = fmt.Sprint(3+len(p.NodeID)) + "," + m["mqttsn.msg.len"]
		m["mqttsn.control.info"] = fmt.Sprintf("0x%02x", p.Radius)
		if len(p.NodeID) == 2 {
			m["mqttsn.wireless.node.id"] = fmt.Sprint(binary.BigEndian.Uint16(p.NodeID))
		}
	}
	b01 := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	x := func(v uint8) string { return fmt.Sprintf("0x%02x", v) }
	d := func(v uint16) string { return fmt.Sprint(v) }
	f := p.Flags
	switch p.Type {
	case ADVERTISE:
		m["mqttsn.gw.id"], m["mqttsn.adv.interv"] = fmt.Sprint(p.GwID), d(p.Duration)
	case SEARCHGW:
		m["mqttsn.radius"] = fmt.Sprint(p.Radius2)
	case GWINFO:
		m["mqttsn.gw.id"] = fmt.Sprint(p.GwID)
		if len(p.GwAddr) > 0 {
			m["mqttsn.gw.addr"] = text(p.GwAddr)
		}
	case CONNECT:
		m["mqttsn.will"], m["mqttsn.clean.session"], m["mqttsn.topic.id.type"] = b01(f.Will()), b01(f.CleanSession()), x(uint8(f.TopicIDType()))
		m["mqttsn.protocol.id"], m["mqttsn.keep.alive"], m["mqttsn.client.id"] = x(p.ProtocolID), d(p.Duration), text(p.ClientID)
	case CONNACK, WILLTOPICRESP, WILLMSGRESP:
		m["mqttsn.return.code"] = x(uint8(p.ReturnCode))
	case WILLTOPIC, WILLTOPICUPD:
		m["mqttsn.topic.id.type"], m["mqttsn.will.topic"] = x(uint8(f.TopicIDType())), text(p.WillTopic)
	case WILLMSG, WILLMSGUPD:
		m["mqttsn.will.msg"] = text(p.WillMsg)
	case REGISTER:
		m["mqttsn.topic.id"], m["mqttsn.msg.id"], m["mqttsn.topic"] = d(p.TopicID), d(p.MsgID), text(p.TopicName)
	case REGACK, PUBACK:
		m["mqttsn.topic.id"], m["mqttsn.msg.id"], m["mqttsn.return.code"] = d(p.TopicID), d(p.MsgID), x(uint8(p.ReturnCode))
	case PUBLISH:
		m["mqttsn.dup"], m["mqttsn.qos"], m["mqttsn.retain"], m["mqttsn.topic.id.type"] = b01(f.DUP()), x(uint8(f>>5&3)), b01(f.Retain()), x(uint8(f.TopicIDType()))
		m["mqttsn.topic.id"], m["mqttsn.msg.id"], m["mqttsn.pub.msg"] = d(p.TopicID), d(p.MsgID), text(p.Data)
	case PUBCOMP, PUBREC, PUBREL, UNSUBACK:
		m["mqttsn.msg.id"] = d(p.MsgID)
	case SUBSCRIBE, UNSUBSCRIBE:
		m["mqttsn.topic.id.type"], m["mqttsn.msg.id"] = x(uint8(f.TopicIDType())), d(p.MsgID)
		// The dissector shows the name, or the 2 TopicId octets, as a string.
		if f.TopicIDType() == TopicNormal {
			m["mqttsn.topic.name.or.id"] = text(p.TopicName)
		} else {
			m["mqttsn.topic.name.or.id"] = text([]byte{byte(p.TopicID >> 8), byte(p.TopicID)})
		}
	case SUBACK:
		m["mqttsn.topic.id.type"] = x(uint8(f.TopicIDType()))
		m["mqttsn.topic.id"], m["mqttsn.msg.id"], m["mqttsn.return.code"] = d(p.TopicID), d(p.MsgID), x(uint8(p.ReturnCode))
	case PINGREQ:
		if len(p.ClientID) > 0 {
			m["mqttsn.client.id"] = text(p.ClientID)
		}
	case DISCONNECT:
		if p.HasDuration {
			m["mqttsn.sleep.timer"] = d(p.Duration)
		}
	}
	return m
}

// tsharkDisagrees says why tshark's reading of a message is known to differ from the
// spec's (and ours), or "".
func tsharkDisagrees(p *Packet) string {
	switch {
	case (p.Type == WILLTOPIC || p.Type == WILLTOPICUPD) && len(p.WillTopic) == 0:
		// 5.4.7: the empty WILLTOPIC is "exactly 2 octets long" (no Flags, no WillTopic).
		// The dissector always reads a Flags octet and reports Malformed Packet.
		return "tshark reads a Flags octet in the 2-octet empty WILLTOPIC(UPD)"
	case p.Encapsulated && len(p.NodeID) != 2:
		// 5.5: the Wireless Node Id has a variable length. The dissector reads it as a
		// 2-octet integer: other lengths are Malformed Packet or are not shown.
		return fmt.Sprintf("tshark reads the Wireless Node Id as 2 octets (this one has %d)", len(p.NodeID))
	}
	return ""
}

// pcapUDP writes a classic pcap file (LINKTYPE_RAW: IPv4 packets) holding one UDP
// datagram to port 1883 per payload.
func pcapUDP(payloads [][]byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)      // thiszone
	b = binary.LittleEndian.AppendUint32(b, 0)      // sigfigs
	b = binary.LittleEndian.AppendUint32(b, 0xffff) // snaplen
	b = binary.LittleEndian.AppendUint32(b, 101)    // LINKTYPE_RAW
	for i, pl := range payloads {
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(pl)))
		binary.BigEndian.PutUint16(ip[4:], uint16(i))
		var sum uint32
		for j := 0; j < len(ip); j += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[j:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		udp := binary.BigEndian.AppendUint16(nil, 40000)
		udp = binary.BigEndian.AppendUint16(udp, 1883)
		udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(pl)))
		udp = binary.BigEndian.AppendUint16(udp, 0) // no checksum
		frame := append(append(ip, udp...), pl...)
		b = binary.LittleEndian.AppendUint32(b, uint32(i)) // seconds
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	return b
}

func TestTsharkReadsOurEncoding(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("skipping: tshark not found (install the Debian package tshark)")
	}
	t.Parallel()
	cases := interopCases()
	var payloads [][]byte
	for _, tc := range cases {
		payloads = append(payloads, Append(nil, &tc.p))
	}
	file := filepath.Join(t.TempDir(), "ours.pcap")
	if err := os.WriteFile(file, pcapUDP(payloads), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-r", file, "-n", "-d", "udp.port==1883,mqttsn", "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	rows := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(rows) != len(cases) {
		t.Fatalf("tshark printed %d rows for %d frames:\n%s\n%s", len(rows), len(cases), out, stderr.String())
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cols := strings.Split(rows[i], "\t")
			if len(cols) != 1+len(tsharkFields) || cols[0] != fmt.Sprint(i+1) {
				t.Fatalf("tshark row %q", rows[i])
			}
			got := map[string]string{}
			for j, f := range tsharkFields {
				if cols[1+j] != "" {
					got[f] = cols[1+j]
				}
			}
			want := tsharkWant(&tc.p)
			var diffs []string
			for _, f := range tsharkFields {
				if want[f] != anyValue && got[f] != want[f] {
					diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", f, got[f], want[f]))
				}
			}
			if why := tsharkDisagrees(&tc.p); why != "" {
				t.Logf("known disagreement (% x): %s; tshark differs in: %s", payloads[i], why, strings.Join(diffs, "; "))
				if got["mqttsn.msg.type"] == "" {
					t.Errorf("tshark does not even see the message type")
				}
				return
			}
			if diffs != nil {
				t.Errorf("tshark reads % x differently:\n  %s", payloads[i], strings.Join(diffs, "\n  "))
			}
		})
	}
}
