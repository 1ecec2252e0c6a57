package packet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// codecCase is one well-formed message: its octets, written by hand from the field
// tables of MQTT-SN v1.2 section 5.4 (5.5 for the encapsulation), and the Packet they
// decode to. Append of p gives exactly these octets.
type codecCase struct {
	name string
	hex  string // spaces are for the reader: one group per field
	p    Packet
}

// validCases holds every v1.2 message type at least once, in spec order, then the
// forwarder encapsulation.
var validCases = []codecCase{
	// 5.4.1 ADVERTISE: Length, MsgType, GwId, Duration.
	{"ADVERTISE", "05 00 2a 0384", Packet{Type: ADVERTISE, GwID: 42, Duration: 900}},
	// 5.4.2 SEARCHGW: Length, MsgType, Radius.
	{"SEARCHGW", "03 01 02", Packet{Type: SEARCHGW, Radius2: 2}},
	// 5.4.3 GWINFO: Length, MsgType, GwId, GwAdd (only when a client answers).
	{"GWINFO from gateway", "03 02 2a", Packet{Type: GWINFO, GwID: 42}},
	{"GWINFO from client", "07 02 2a c0a80102", Packet{Type: GWINFO, GwID: 42, GwAddr: []byte{192, 168, 1, 2}}},
	// 5.4.4 CONNECT: Length, MsgType, Flags (Will, CleanSession), ProtocolId, Duration, ClientId.
	{"CONNECT", "0d 04 0c 01 003c 636c69656e7431", Packet{Type: CONNECT, Flags: FlagWill | FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("client1")}},
	{"CONNECT no will", "0a 04 04 01 ffff 61626364", Packet{Type: CONNECT, Flags: FlagCleanSession, ProtocolID: 1, Duration: 0xffff, ClientID: []byte("abcd")}},
	// 5.4.5 CONNACK: Length, MsgType, ReturnCode.
	{"CONNACK", "03 05 00", Packet{Type: CONNACK, ReturnCode: Accepted}},
	{"CONNACK rejected", "03 05 03", Packet{Type: CONNACK, ReturnCode: NotSupported}},
	// 5.4.6 WILLTOPICREQ: header only.
	{"WILLTOPICREQ", "02 06", Packet{Type: WILLTOPICREQ}},
	// 5.4.7 WILLTOPIC: Length, MsgType, Flags (QoS, Retain), WillTopic; or header only.
	{"WILLTOPIC", "06 07 30 772f74", Packet{Type: WILLTOPIC, Flags: FlagRetain | 0x20, WillTopic: []byte("w/t")}},
	{"WILLTOPIC empty", "02 07", Packet{Type: WILLTOPIC}},
	// 5.4.8 WILLMSGREQ: header only.
	{"WILLMSGREQ", "02 08", Packet{Type: WILLMSGREQ}},
	// 5.4.9 WILLMSG: Length, MsgType, WillMsg.
	{"WILLMSG", "06 09 62796521", Packet{Type: WILLMSG, WillMsg: []byte("bye!")}},
	// 5.4.10 REGISTER: Length, MsgType, TopicId, MsgId, TopicName.
	{"REGISTER from client", "09 0a 0000 1234 612f62", Packet{Type: REGISTER, MsgID: 0x1234, TopicName: []byte("a/b")}},
	{"REGISTER from gateway", "09 0a 0005 0001 612f62", Packet{Type: REGISTER, TopicID: 5, MsgID: 1, TopicName: []byte("a/b")}},
	// 5.4.11 REGACK: Length, MsgType, TopicId, MsgId, ReturnCode.
	{"REGACK", "07 0b 0005 1234 00", Packet{Type: REGACK, TopicID: 5, MsgID: 0x1234, ReturnCode: Accepted}},
	// 5.4.12 PUBLISH: Length, MsgType, Flags (DUP, QoS, Retain, TopicIdType), TopicId, MsgId, Data.
	{"PUBLISH QoS 1 DUP", "09 0c a0 0005 0102 6869", Packet{Type: PUBLISH, Flags: FlagDUP | 0x20, TopicID: 5, MsgID: 0x0102, Data: []byte("hi")}},
	{"PUBLISH QoS -1 short name", "08 0c 62 6162 0000 78", Packet{Type: PUBLISH, Flags: 0x60 | 0x02, TopicID: 0x6162, Data: []byte("x")}},
	{"PUBLISH QoS 2 retained predefined empty", "07 0c 51 0001 ffff", Packet{Type: PUBLISH, Flags: 0x40 | FlagRetain | 0x01, TopicID: 1, MsgID: 0xffff}},
	// 5.4.13 PUBACK: Length, MsgType, TopicId, MsgId, ReturnCode.
	{"PUBACK", "07 0d 0005 0102 02", Packet{Type: PUBACK, TopicID: 5, MsgID: 0x0102, ReturnCode: InvalidTopicID}},
	// 5.4.14 PUBREC, PUBREL, PUBCOMP: Length, MsgType, MsgId.
	{"PUBCOMP", "04 0e 0102", Packet{Type: PUBCOMP, MsgID: 0x0102}},
	{"PUBREC", "04 0f 0102", Packet{Type: PUBREC, MsgID: 0x0102}},
	{"PUBREL", "04 10 0102", Packet{Type: PUBREL, MsgID: 0x0102}},
	// 5.4.15 SUBSCRIBE: Length, MsgType, Flags (DUP, QoS, TopicIdType), MsgId, TopicName or TopicId.
	{"SUBSCRIBE name", "08 12 20 0007 612f2b", Packet{Type: SUBSCRIBE, Flags: 0x20, MsgID: 7, TopicName: []byte("a/+")}},
	{"SUBSCRIBE predefined", "07 12 41 0008 0010", Packet{Type: SUBSCRIBE, Flags: 0x40 | 0x01, MsgID: 8, TopicID: 0x10}},
	{"SUBSCRIBE short name DUP", "07 12 82 0009 6162", Packet{Type: SUBSCRIBE, Flags: FlagDUP | 0x02, MsgID: 9, TopicID: 0x6162}},
	// 5.4.16 SUBACK: Length, MsgType, Flags (granted QoS), TopicId, MsgId, ReturnCode.
	{"SUBACK", "08 13 20 0005 0007 00", Packet{Type: SUBACK, Flags: 0x20, TopicID: 5, MsgID: 7, ReturnCode: Accepted}},
	// 5.4.17 UNSUBSCRIBE: as SUBSCRIBE.
	{"UNSUBSCRIBE name", "08 14 00 000a 612f2b", Packet{Type: UNSUBSCRIBE, MsgID: 10, TopicName: []byte("a/+")}},
	{"UNSUBSCRIBE predefined", "07 14 01 000b 0010", Packet{Type: UNSUBSCRIBE, Flags: 0x01, MsgID: 11, TopicID: 0x10}},
	// 5.4.18 UNSUBACK: Length, MsgType, MsgId.
	{"UNSUBACK", "04 15 000a", Packet{Type: UNSUBACK, MsgID: 10}},
	// 5.4.19 PINGREQ: Length, MsgType, ClientId (optional).
	{"PINGREQ", "02 16", Packet{Type: PINGREQ}},
	{"PINGREQ from sleeper", "04 16 6331", Packet{Type: PINGREQ, ClientID: []byte("c1")}},
	// 5.4.20 PINGRESP: header only.
	{"PINGRESP", "02 17", Packet{Type: PINGRESP}},
	// 5.4.21 DISCONNECT: Length, MsgType, Duration (optional).
	{"DISCONNECT", "02 18", Packet{Type: DISCONNECT}},
	{"DISCONNECT sleep", "04 18 0e10", Packet{Type: DISCONNECT, Duration: 3600, HasDuration: true}},
	// 5.4.22 WILLTOPICUPD: as WILLTOPIC.
	{"WILLTOPICUPD", "06 1a 30 772f74", Packet{Type: WILLTOPICUPD, Flags: FlagRetain | 0x20, WillTopic: []byte("w/t")}},
	{"WILLTOPICUPD empty", "02 1a", Packet{Type: WILLTOPICUPD}},
	// 5.4.23 WILLTOPICRESP: Length, MsgType, ReturnCode.
	{"WILLTOPICRESP", "03 1b 00", Packet{Type: WILLTOPICRESP, ReturnCode: Accepted}},
	// 5.4.24 WILLMSGUPD: Length, MsgType, WillMsg.
	{"WILLMSGUPD", "06 1c 62796521", Packet{Type: WILLMSGUPD, WillMsg: []byte("bye!")}},
	// 5.4.25 WILLMSGRESP: Length, MsgType, ReturnCode.
	{"WILLMSGRESP", "03 1d 01", Packet{Type: WILLMSGRESP, ReturnCode: Congestion}},
	// 5.5 forwarder encapsulation: Length (up to the end of the node id), 0xFE, Ctrl
	// (radius in bits 1-0), Wireless Node Id, then the whole MQTT-SN message.
	{"ENCAPSULATED PINGRESP", "05 fe 01 aabb 02 17", Packet{Type: PINGRESP, Encapsulated: true, Radius: 1, NodeID: []byte{0xaa, 0xbb}}},
	{"ENCAPSULATED CONNECT, EUI-64 node id", "0b fe 00 0011223344556677 0d 04 0c 01 003c 636c69656e7431",
		Packet{Type: CONNECT, Encapsulated: true, NodeID: []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, Flags: FlagWill | FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("client1")}},
	{"ENCAPSULATED PUBLISH, radius 3, no node id", "03 fe 03 09 0c a0 0005 0102 6869", Packet{Type: PUBLISH, Encapsulated: true, Radius: 3, Flags: FlagDUP | 0x20, TopicID: 5, MsgID: 0x0102, Data: []byte("hi")}},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// diffPackets lists the fields in which a and b differ. Byte slices compare by content
// (nil equals empty): a decoded Packet aliases the datagram, a built one does not.
func diffPackets(a, b *Packet) []string {
	var diffs []string
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := 0; i < va.NumField(); i++ {
		fa, fb := va.Field(i), vb.Field(i)
		name := va.Type().Field(i).Name
		if fa.Kind() == reflect.Slice {
			if !bytes.Equal(fa.Bytes(), fb.Bytes()) {
				diffs = append(diffs, fmt.Sprintf("%s: %q vs %q", name, fa.Bytes(), fb.Bytes()))
			}
			continue
		}
		if !fa.Equal(fb) {
			diffs = append(diffs, fmt.Sprintf("%s: %v vs %v", name, fa, fb))
		}
	}
	return diffs
}

func checkPacket(t testing.TB, got, want *Packet) {
	t.Helper()
	if d := diffPackets(got, want); d != nil {
		t.Errorf("decoded packet differs (got vs want):\n  %s", strings.Join(d, "\n  "))
	}
}

func TestValidCasesCoverEveryType(t *testing.T) {
	seen := map[Type]bool{}
	for _, tc := range validCases {
		seen[tc.p.Type] = true
		if tc.p.Encapsulated {
			seen[ENCAPSULATED] = true
		}
	}
	if len(Types) != 28 {
		t.Errorf("Types lists %d types, v1.2 defines 27 plus ENCAPSULATED", len(Types))
	}
	for _, typ := range Types {
		if !seen[typ] {
			t.Errorf("no codec case for %v", typ)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			p := Packet{Type: 0x99, GwID: 7, Data: []byte("stale")} // Decode must overwrite
			if err := Decode(b, &p); err != nil {
				t.Fatalf("Decode(%x): %v", b, err)
			}
			checkPacket(t, &p, &tc.p)
		})
	}
}

func TestAppend(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			if got := Append(nil, &tc.p); !bytes.Equal(got, want) {
				t.Errorf("Append = % x\n          want % x", got, want)
			}
			// Append appends: what is already in dst stays.
			prefix := []byte{0xde, 0xad}
			if got := Append(prefix, &tc.p); !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], want) {
				t.Errorf("Append after a prefix = % x", got)
			}
			inner := want
			if tc.p.Encapsulated {
				inner = want[want[0]:]
			}
			if n := Len(&tc.p); n != len(inner) {
				t.Errorf("Len = %d, encoded message (without encapsulation) is %d octets", n, len(inner))
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			b := Append(nil, &tc.p)
			var p Packet
			if err := Decode(b, &p); err != nil {
				t.Fatalf("Decode(Append(p)): %v", err)
			}
			checkPacket(t, &p, &tc.p)
			if again := Append(nil, &p); !bytes.Equal(again, b) {
				t.Errorf("Append(Decode(b)) = % x, b = % x", again, b)
			}
		})
	}
}

// Append ignores the fields its type does not use.
func TestAppendIgnoresForeignFields(t *testing.T) {
	p := Packet{Type: PUBREL, MsgID: 0x0102, ClientID: []byte("x"), Data: []byte("y"), GwID: 9, TopicID: 3, Flags: 0xff}
	if got, want := Append(nil, &p), unhex(t, "04 10 0102"); !bytes.Equal(got, want) {
		t.Errorf("Append = % x, want % x", got, want)
	}
}

// 5.2.1: a Length field whose first octet is 0x01 is three octets long; messages of 256
// octets or more must use it.
func TestThreeOctetLength(t *testing.T) {
	for _, tc := range []struct {
		data   int
		header string // Length field and MsgType
	}{
		{248, "ff 0c"},         // 2+5+248 = 255: the longest 1-octet form
		{249, "01 0102 0c"},    // 256 in 1-octet terms: 258 with the 3-octet Length
		{251, "01 0104 0c"},    // a payload over 250 octets
		{300, "01 0135 0c"},    // 4+5+300 = 309
		{65526, "01 ffff 0c"},  // MaxLen
		{1000, "01 03f1 0c"},   // 1009
		{0x1000, "01 1009 0c"}, // 4105
	} {
		t.Run(fmt.Sprint(tc.data), func(t *testing.T) {
			data := bytes.Repeat([]byte{'z'}, tc.data)
			p := Packet{Type: PUBLISH, Flags: 0x20, TopicID: 0x0102, MsgID: 0x0304, Data: data}
			b := Append(nil, &p)
			want := append(unhex(t, tc.header+" 20 0102 0304"), data...)
			if !bytes.Equal(b, want) {
				t.Fatalf("Append: header % x, want % x", b[:min(len(b), 9)], want[:9])
			}
			if Len(&p) != len(b) {
				t.Errorf("Len = %d, encoded %d", Len(&p), len(b))
			}
			var q Packet
			if err := Decode(b, &q); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkPacket(t, &q, &p)
		})
	}
}

// A message shorter than 256 octets may still come with the 3-octet Length (5.2.1 says
// such messages "may" use the short form): it decodes, and re-encodes in the short form.
func TestThreeOctetLengthShortMessage(t *testing.T) {
	for _, tc := range []struct {
		name, long, short string
	}{
		{"PINGRESP", "01 0004 17", "02 17"},
		{"PUBACK", "01 0009 0d 0005 0102 00", "07 0d 0005 0102 00"},
		{"PUBLISH", "01 000b 0c a0 0005 0102 6869", "09 0c a0 0005 0102 6869"},
		{"CONNECT", "01 000f 04 0c 01 003c 636c69656e7431", "0d 04 0c 01 003c 636c69656e7431"},
		{"DISCONNECT sleep", "01 0006 18 0e10", "04 18 0e10"},
		{"ENCAPSULATED, long inner", "05 fe 01 aabb 01 0004 17", "05 fe 01 aabb 02 17"},
		{"ENCAPSULATED, long outer", "01 0007 fe 01 aabb 02 17", "05 fe 01 aabb 02 17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var long, short Packet
			if err := Decode(unhex(t, tc.long), &long); err != nil {
				t.Fatalf("Decode(3-octet form): %v", err)
			}
			if err := Decode(unhex(t, tc.short), &short); err != nil {
				t.Fatalf("Decode(1-octet form): %v", err)
			}
			checkPacket(t, &long, &short)
			if got, want := Append(nil, &long), unhex(t, tc.short); !bytes.Equal(got, want) {
				t.Errorf("re-encoded as % x, want % x", got, want)
			}
		})
	}
}

// Decoding aliases the datagram: no copies.
func TestDecodeAliases(t *testing.T) {
	b := unhex(t, "09 0c a0 0005 0102 6869")
	var p Packet
	if err := Decode(b, &p); err != nil {
		t.Fatal(err)
	}
	b[7] = 'H'
	if string(p.Data) != "Hi" {
		t.Errorf("Data = %q after changing the datagram; want it to alias", p.Data)
	}
}

func TestReset(t *testing.T) {
	p := validCases[0].p
	p.Reset()
	if d := diffPackets(&p, &Packet{}); d != nil {
		t.Errorf("Reset left %v", d)
	}
}
