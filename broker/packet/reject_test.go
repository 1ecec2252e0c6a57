package packet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// decodeErr decodes b, which must be malformed, and returns its *Error. Decode must not
// panic and must return an *Error, never another error type.
func decodeErr(t *testing.T, b []byte) *Error {
	t.Helper()
	var p Packet
	err := Decode(b, &p)
	if err == nil {
		t.Fatalf("Decode(% x) accepted a malformed datagram as %v", b, p.Type)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Decode(% x) = %T %v, want *Error", b, err, err)
	}
	if ReasonOf(err) != e.Reason || e.Reason == ReasonNone {
		t.Fatalf("Decode(% x): Reason %v, ReasonOf %v", b, e.Reason, ReasonOf(err))
	}
	if !strings.HasPrefix(err.Error(), "packet: ") || e.Detail == "" {
		t.Errorf("Decode(% x): error text %q", b, err.Error())
	}
	return e
}

type rejectCase struct {
	name   string
	hex    string
	reason Reason
}

func runRejects(t *testing.T, cases []rejectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			if e := decodeErr(t, b); e.Reason != tc.reason {
				t.Errorf("Decode(% x): Reason %v (%v), want %v", b, e.Reason, e, tc.reason)
			}
		})
	}
}

func TestRejectTruncatedPrefixes(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			for i := 0; i < len(b); i++ {
				e := decodeErr(t, b[:i:i]) // capacity i: reading past it would panic
				switch {
				case i < 2 && e.Reason != ReasonShort:
					t.Errorf("%d-octet prefix: Reason %v, want %v", i, e.Reason, ReasonShort)
				case e.Reason != ReasonShort && e.Reason != ReasonLength:
					t.Errorf("%d-octet prefix % x: Reason %v", i, b[:i], e.Reason)
				}
			}
		})
	}
}

// Prefixes of 3-octet-length messages, including the cut inside the Length field.
func TestRejectTruncatedThreeOctetLength(t *testing.T) {
	b := Append(nil, &Packet{Type: PUBLISH, TopicID: 1, Data: make([]byte, 300)})
	for i := 0; i < len(b); i++ {
		want := ReasonLength
		if i < 4 {
			want = ReasonShort
		}
		if e := decodeErr(t, b[:i:i]); e.Reason != want {
			t.Errorf("%d-octet prefix: Reason %v, want %v", i, e.Reason, want)
		}
	}
}

func TestRejectLength(t *testing.T) {
	runRejects(t, []rejectCase{
		{"empty datagram", "", ReasonShort},
		{"one octet", "02", ReasonShort},
		{"3-octet length cut short", "01 00", ReasonShort},
		{"3-octet length, no type", "01 0004", ReasonShort},
		{"too big", "05 0f 0102", ReasonLength},
		{"too big by far", "ff 0f 0102", ReasonLength},
		{"too small", "03 0f 0102", ReasonLength},
		{"too small for its header", "00 0f 0102", ReasonLength},
		{"length 0", "00 17", ReasonLength},
		{"length 1 (reads as a 3-octet length of 0x0f01)", "01 0f 0102", ReasonLength},
		{"length 1 before a 2-octet datagram", "01 17", ReasonShort},
		{"3-octet too big", "01 0007 0f 0102", ReasonLength},
		{"3-octet too small", "01 0005 0f 0102", ReasonLength},
		{"3-octet 0", "01 0000 0f 0102", ReasonLength},
		{"3-octet 3, smaller than its header", "01 0003 17", ReasonLength},
		{"3-octet 0xffff", "01 ffff 0f 0102", ReasonLength},
		// Paho MQTT-SN gateway crash: an 8-octet SUBSCRIBE whose Length octet is 0.
		{"Paho: SUBSCRIBE with length 0", "00 12 20 0001 612f62", ReasonLength},
		{"PUBLISH one octet longer than its length", "09 0c a0 0005 0102 686969", ReasonLength},
		{"PUBLISH one octet shorter than its length", "09 0c a0 0005 0102 68", ReasonLength},
		{"DISCONNECT of 3 octets", "03 18 0e", ReasonLength},
		{"DISCONNECT of 5 octets", "05 18 0e1000", ReasonLength},
	})
}

func TestRejectReservedTypes(t *testing.T) {
	reserved := []Type{0x03, 0x11, 0x19, 0xff}
	for v := 0x1e; v <= 0xfd; v++ {
		reserved = append(reserved, Type(v))
	}
	for _, typ := range reserved {
		if typ.Defined() {
			t.Errorf("%#02x is reserved in v1.2 but Defined", uint8(typ))
		}
		for _, form := range []string{"02 %02x", "04 %02x 0001", "01 0004 %02x", "03 fe 00 02 %02x"} {
			b := unhex(t, fmt.Sprintf(form, uint8(typ)))
			e := decodeErr(t, b)
			if e.Reason != ReasonReservedType || e.Type != typ {
				t.Errorf("Decode(% x): Reason %v Type %v, want %v %v", b, e.Reason, e.Type, ReasonReservedType, typ)
			}
		}
	}
	if got := (&Error{Type: 0x03, Reason: ReasonReservedType, Detail: "x"}).Error(); got != "packet: x" {
		t.Errorf("reserved-type error text %q", got)
	}
}

func TestRejectBody(t *testing.T) {
	runRejects(t, []rejectCase{
		// TopicIdType 0b11 is reserved (5.3.4).
		{"PUBLISH TopicIdType 11", "09 0c 23 0005 0102 6869", ReasonTopicIDType},
		{"PUBLISH QoS -1 TopicIdType 11", "07 0c 63 0005 0000", ReasonTopicIDType},
		{"SUBSCRIBE TopicIdType 11", "07 12 03 0001 0005", ReasonTopicIDType},
		{"SUBSCRIBE TopicIdType 11 with a name", "08 12 23 0001 612f62", ReasonTopicIDType},
		{"UNSUBSCRIBE TopicIdType 11", "07 14 03 0001 0005", ReasonTopicIDType},
		// The will's QoS cannot be -1.
		{"WILLTOPIC QoS -1", "06 07 60 772f74", ReasonFlags},
		{"WILLTOPICUPD QoS -1", "06 1a 70 772f74", ReasonFlags},
		// Fixed fields missing, with a Length that agrees with the datagram.
		{"ADVERTISE without Duration", "03 00 2a", ReasonShort},
		{"ADVERTISE half a Duration", "04 00 2a 03", ReasonShort},
		{"SEARCHGW without Radius", "02 01", ReasonShort},
		{"GWINFO without GwId", "02 02", ReasonShort},
		{"CONNECT without Duration", "04 04 0c 01", ReasonShort},
		{"CONNECT half a Duration", "05 04 0c 01 00", ReasonShort},
		{"CONNACK without ReturnCode", "02 05", ReasonShort},
		{"REGISTER without TopicName", "06 0a 0000 0001", ReasonShort},
		{"REGACK without ReturnCode", "06 0b 0005 0001", ReasonShort},
		{"PUBLISH without MsgId", "05 0c 00 0005", ReasonShort},
		{"PUBLISH half a MsgId", "06 0c 00 0005 00", ReasonShort},
		{"PUBACK without ReturnCode", "06 0d 0005 0001", ReasonShort},
		{"PUBCOMP half a MsgId", "03 0e 01", ReasonShort},
		{"PUBREC without MsgId", "02 0f", ReasonShort},
		{"PUBREL without MsgId", "02 10", ReasonShort},
		{"SUBSCRIBE without MsgId", "03 12 20", ReasonShort},
		{"SUBSCRIBE empty TopicName", "05 12 20 0001", ReasonShort},
		{"SUBSCRIBE half a predefined TopicId", "06 12 21 0001 00", ReasonShort},
		{"SUBSCRIBE short name of one octet", "06 12 22 0001 61", ReasonShort},
		{"SUBACK without ReturnCode", "07 13 20 0005 0001", ReasonShort},
		{"UNSUBSCRIBE empty TopicName", "05 14 00 0001", ReasonShort},
		{"UNSUBSCRIBE without predefined TopicId", "05 14 01 0001", ReasonShort},
		{"UNSUBACK half a MsgId", "03 15 00", ReasonShort},
		{"WILLTOPICRESP without ReturnCode", "02 1b", ReasonShort},
		{"WILLMSGRESP without ReturnCode", "02 1d", ReasonShort},
	})
}

// Types of fixed size reject one extra octet even when the Length counts it.
func TestRejectTrailingOctets(t *testing.T) {
	fixed := map[Type]bool{
		ADVERTISE: true, SEARCHGW: true, CONNACK: true, WILLTOPICREQ: true, WILLMSGREQ: true,
		REGACK: true, PUBACK: true, PUBCOMP: true, PUBREC: true, PUBREL: true, SUBACK: true,
		UNSUBACK: true, PINGRESP: true, WILLTOPICRESP: true, WILLMSGRESP: true,
	}
	seen := map[Type]bool{}
	for _, tc := range validCases {
		p := tc.p
		byID := (p.Type == SUBSCRIBE || p.Type == UNSUBSCRIBE) && p.Flags.TopicIDType() != TopicNormal
		if p.Encapsulated || !fixed[p.Type] && !byID {
			continue
		}
		seen[p.Type] = true
		t.Run(tc.name, func(t *testing.T) {
			b := append(unhex(t, tc.hex), 0x00)
			b[0]++
			e := decodeErr(t, b)
			if e.Reason != ReasonLong || e.Type != p.Type || e.Got != len(b) || e.Want != len(b)-1 {
				t.Errorf("Decode(% x): %v Reason %v Got %d Want %d; want %v, %d, %d", b, e.Type, e.Reason, e.Got, e.Want, ReasonLong, len(b), len(b)-1)
			}
			if !strings.Contains(e.Error(), p.Type.String()) {
				t.Errorf("error %q does not name %v", e.Error(), p.Type)
			}
		})
	}
	for typ := range fixed {
		if !seen[typ] {
			t.Errorf("no valid case of fixed-size %v", typ)
		}
	}
}

func TestRejectEncapsulation(t *testing.T) {
	runRejects(t, []rejectCase{
		{"nested", "03 fe 01 03 fe 01 02 16", ReasonEncapsulation},
		{"nested, with node ids", "05 fe 01 aabb 05 fe 01 aabb 02 16", ReasonEncapsulation},
		{"nested in the 3-octet form", "03 fe 01 01 0005 fe 01 02 16", ReasonEncapsulation},
		{"nested in a 3-octet outer", "01 0005 fe 01 03 fe 01 02 16", ReasonEncapsulation},
		{"nested, nothing after", "03 fe 01 03 fe 00", ReasonEncapsulation},
		{"no Ctrl octet (length 2)", "02 fe 02 17", ReasonEncapsulation},
		{"3-octet, no Ctrl octet (length 4)", "01 0004 fe 02 17", ReasonEncapsulation},
		{"length 0", "00 fe 01 02 17", ReasonLength},
		{"length past the datagram", "09 fe 01 aabb 02 17", ReasonLength},
		{"header only", "05 fe 01 aabb", ReasonShort},
		{"one octet of message", "05 fe 01 aabb 02", ReasonShort},
		{"inner length mismatch", "05 fe 01 aabb 03 17", ReasonLength},
		{"inner length 0", "05 fe 01 aabb 00 17", ReasonLength},
		{"inner reserved type", "05 fe 01 aabb 02 03", ReasonReservedType},
		{"inner too long", "05 fe 01 aabb 03 17 00", ReasonLong},
		{"inner Paho crash", "03 fe 00 00 12 20 0001 612f62", ReasonLength},
		{"inner TopicIdType 11", "03 fe 00 09 0c 23 0005 0102 6869", ReasonTopicIDType},
	})
	// An error inside the encapsulation says so.
	e := decodeErr(t, unhex(t, "05 fe 01 aabb 02"))
	if !strings.Contains(e.Error(), "encapsulated") {
		t.Errorf("error %q does not mention the encapsulation", e.Error())
	}
}

// Decode never panics, whatever the octets: every 1- and 2-octet datagram, and every
// 3-octet-form and encapsulated header over a short body.
func TestDecodeSmallDatagrams(t *testing.T) {
	var p Packet
	for a := 0; a < 256; a++ {
		_ = Decode([]byte{byte(a)}, &p)
		for b := 0; b < 256; b++ {
			_ = Decode([]byte{byte(a), byte(b)}, &p)
			_ = Decode([]byte{byte(a), byte(b), 0, 0}, &p)
			_ = Decode([]byte{0x01, byte(a), byte(b), 0xfe, 0x00}, &p)
			_ = Decode([]byte{byte(a), 0xfe, 0x00, byte(b), 0x17}, &p)
		}
	}
}

// An error names the message type only when the datagram held one.
func TestErrorText(t *testing.T) {
	for _, tc := range []struct{ hex, want string }{
		{"05", "packet: datagram of 1 octets is shorter than a header"},
		{"01 00", "packet: datagram of 2 octets is shorter than a 3-octet-length header"},
		{"05 fe 01 aabb", "packet: encapsulated message: datagram of 0 octets is shorter than a header"},
		{"04 00 2a 03", "packet: ADVERTISE: 4 octets, need at least 5"},
		{"00 00", "packet: ADVERTISE: length field 0 is smaller than its own header (2)"},
		{"08 0d 0005 0102 00 00", "packet: PUBACK: 8 octets, must be exactly 7"},
		{"02 03", "packet: message type 0x03 is reserved"},
	} {
		if got := decodeErr(t, unhex(t, tc.hex)).Error(); got != tc.want {
			t.Errorf("Decode(%s): %q, want %q", tc.hex, got, tc.want)
		}
	}
}
