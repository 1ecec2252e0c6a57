package packet

import (
	"strings"
	"testing"
)

// 5.3.4: DUP bit 7, QoS bits 6-5 (11 is QoS -1), Retain 4, Will 3, CleanSession 2,
// TopicIdType 1-0.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		f                          Flags
		dup, retain, will, cleanSs bool
		qos                        QoS
		tid                        TopicIDType
	}{
		{0x00, false, false, false, false, QoS0, TopicNormal},
		{0x80, true, false, false, false, QoS0, TopicNormal},
		{0x20, false, false, false, false, QoS1, TopicNormal},
		{0x40, false, false, false, false, QoS2, TopicNormal},
		{0x60, false, false, false, false, QoSMinus1, TopicNormal},
		{0x10, false, true, false, false, QoS0, TopicNormal},
		{0x08, false, false, true, false, QoS0, TopicNormal},
		{0x04, false, false, false, true, QoS0, TopicNormal},
		{0x01, false, false, false, false, QoS0, TopicPredefined},
		{0x02, false, false, false, false, QoS0, TopicShort},
		{0x03, false, false, false, false, QoS0, topicReserved},
		{0xff, true, true, true, true, QoSMinus1, topicReserved},
		{0xb2, true, true, false, false, QoS1, TopicShort},
	} {
		f := tc.f
		if f.DUP() != tc.dup || f.Retain() != tc.retain || f.Will() != tc.will || f.CleanSession() != tc.cleanSs ||
			f.QoS() != tc.qos || f.TopicIDType() != tc.tid {
			t.Errorf("Flags(%#02x): DUP %v Retain %v Will %v Clean %v QoS %d TopicIdType %v", uint8(f),
				f.DUP(), f.Retain(), f.Will(), f.CleanSession(), f.QoS(), f.TopicIDType())
		}
	}

	for _, tc := range []struct {
		from Flags
		q    QoS
		want Flags
	}{
		{0x00, QoSMinus1, 0x60}, // bit pattern 11
		{0x00, QoS0, 0x00},
		{0x00, QoS1, 0x20},
		{0x00, QoS2, 0x40},
		{0x60, QoS1, 0x20},
		{0x60, QoS0, 0x00},
		{0x9f, QoS2, 0xdf}, // the other bits stay
		{0xff, QoS0, 0x9f},
		{0x92, QoSMinus1, 0xf2},
	} {
		got := tc.from.WithQoS(tc.q)
		if got != tc.want {
			t.Errorf("Flags(%#02x).WithQoS(%d) = %#02x, want %#02x", uint8(tc.from), tc.q, uint8(got), uint8(tc.want))
		}
		if got.QoS() != tc.q {
			t.Errorf("Flags(%#02x).WithQoS(%d).QoS() = %d", uint8(tc.from), tc.q, got.QoS())
		}
	}

	for _, tc := range []struct {
		from Flags
		tid  TopicIDType
		want Flags
	}{
		{0x00, TopicPredefined, 0x01},
		{0x00, TopicShort, 0x02},
		{0xff, TopicNormal, 0xfc},
		{0xe1, TopicShort, 0xe2},
	} {
		if got := tc.from.WithTopicIDType(tc.tid); got != tc.want || got.TopicIDType() != tc.tid {
			t.Errorf("Flags(%#02x).WithTopicIDType(%v) = %#02x, want %#02x", uint8(tc.from), tc.tid, uint8(got), uint8(tc.want))
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{PUBLISH.String(), "PUBLISH"},
		{ENCAPSULATED.String(), "ENCAPSULATED"},
		{Type(0x03).String(), "RESERVED(0x3)"},
		{Type(0xff).String(), "RESERVED(0xff)"},
		{InvalidTopicID.String(), "rejected: invalid topic ID"},
		{ReturnCode(9).String(), "reserved(0x9)"},
		{TopicShort.String(), "short"},
		{ReasonLength.String(), "length_mismatch"},
		{Reason(200).String(), "reason(200)"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
	for r := Reason(0); int(r) < NumReasons; r++ {
		if strings.HasPrefix(r.String(), "reason(") {
			t.Errorf("Reason %d has no name", r)
		}
	}
	for v := 0; v < 256; v++ {
		typ := Type(v)
		named := !strings.HasPrefix(typ.String(), "RESERVED")
		if named != typ.Defined() {
			t.Errorf("Type %#02x: Defined %v, String %q", v, typ.Defined(), typ.String())
		}
	}
}
