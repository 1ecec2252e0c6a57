package packet

import (
	"bytes"
	"testing"
)

// benchPublish is a typical QoS 1 PUBLISH: a registered topic id and a 64-octet payload.
var benchPublish = Packet{Type: PUBLISH, Flags: FlagRetain.WithQoS(QoS1), TopicID: 0x0102, MsgID: 0x0304, Data: bytes.Repeat([]byte{'p'}, 64)}

func TestDecodeDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Packet
	}{
		{"PUBLISH", benchPublish},
		{"PUBLISH 3-octet length", Packet{Type: PUBLISH, TopicID: 1, Data: make([]byte, 1000)}},
		{"encapsulated PUBLISH", Packet{Type: PUBLISH, Encapsulated: true, Radius: 1, NodeID: []byte{1, 2}, TopicID: 1, Data: []byte("x")}},
		{"CONNECT", Packet{Type: CONNECT, Flags: FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("client")}},
	} {
		b := Append(nil, &tc.p)
		var p Packet
		allocs := testing.AllocsPerRun(100, func() {
			if err := Decode(b, &p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Decode(%s) allocates %.1f times per call, want 0", tc.name, allocs)
		}
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Packet
	}{
		{"PUBLISH", benchPublish},
		{"PUBLISH 3-octet length", Packet{Type: PUBLISH, TopicID: 1, Data: make([]byte, 1000)}},
		{"encapsulated SUBACK", Packet{Type: SUBACK, Encapsulated: true, NodeID: []byte{1, 2}, TopicID: 1, MsgID: 2}},
	} {
		buf := make([]byte, 0, 2048)
		allocs := testing.AllocsPerRun(100, func() {
			buf = Append(buf[:0], &tc.p)
		})
		if allocs != 0 {
			t.Errorf("Append(%s) into a buffer with room allocates %.1f times per call, want 0", tc.name, allocs)
		}
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	buf := Append(nil, &benchPublish)
	var p Packet
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(buf, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(Len(&benchPublish)))
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], &benchPublish)
	}
}
