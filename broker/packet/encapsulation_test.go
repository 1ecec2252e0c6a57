package packet

import (
	"bytes"
	"testing"
)

// 5.5: the forwarder encapsulation, both ways.
func TestEncapsulation(t *testing.T) {
	connect := Packet{Type: CONNECT, Flags: FlagCleanSession, ProtocolID: 1, Duration: 30, ClientID: []byte("node7")}
	inner := Append(nil, &connect)

	t.Run("wrap", func(t *testing.T) {
		p := connect
		p.Encapsulated, p.Radius, p.NodeID = true, 2, []byte{0x12, 0x34}
		got := Append(nil, &p)
		want := append(unhex(t, "05 fe 02 1234"), inner...)
		if !bytes.Equal(got, want) {
			t.Fatalf("Append = % x, want % x", got, want)
		}
		// AppendEncapsulationHeader followed by the plain message is the same thing.
		if alt := Append(AppendEncapsulationHeader(nil, 2, []byte{0x12, 0x34}), &connect); !bytes.Equal(alt, want) {
			t.Errorf("AppendEncapsulationHeader+Append = % x", alt)
		}
	})

	t.Run("unwrap", func(t *testing.T) {
		b := append(unhex(t, "05 fe 01 beef"), inner...)
		var p Packet
		if err := Decode(b, &p); err != nil {
			t.Fatal(err)
		}
		want := connect
		want.Encapsulated, want.Radius, want.NodeID = true, 1, []byte{0xbe, 0xef}
		checkPacket(t, &p, &want)
	})

	t.Run("reply goes back the same way", func(t *testing.T) {
		b := append(unhex(t, "06 fe 01 0a0b0c"), inner...)
		var req Packet
		if err := Decode(b, &req); err != nil {
			t.Fatal(err)
		}
		reply := Packet{Type: CONNACK, Encapsulated: req.Encapsulated, Radius: req.Radius, NodeID: req.NodeID}
		if got, want := Append(nil, &reply), unhex(t, "06 fe 01 0a0b0c 03 05 00"); !bytes.Equal(got, want) {
			t.Errorf("reply = % x, want % x", got, want)
		}
	})

	t.Run("radius is two bits", func(t *testing.T) {
		// Ctrl bits 7-2 are reserved: ignored on decode, never set on encode.
		var p Packet
		if err := Decode(unhex(t, "03 fe fd 02 17"), &p); err != nil {
			t.Fatal(err)
		}
		if p.Radius != 1 {
			t.Errorf("Radius = %d from Ctrl 0xfd, want 1", p.Radius)
		}
		if got := AppendEncapsulationHeader(nil, 0xff, nil); !bytes.Equal(got, unhex(t, "03 fe 03")) {
			t.Errorf("AppendEncapsulationHeader(radius 0xff) = % x", got)
		}
	})

	t.Run("long node id uses the 3-octet length", func(t *testing.T) {
		node := bytes.Repeat([]byte{0x5a}, 300)
		p := Packet{Type: PINGRESP, Encapsulated: true, Radius: 1, NodeID: node}
		b := Append(nil, &p)
		want := append(append(unhex(t, "01 0131 fe 01"), node...), 0x02, 0x17) // 4+1+300 = 305
		if !bytes.Equal(b, want) {
			t.Fatalf("Append: % x ...", b[:8])
		}
		var q Packet
		if err := Decode(b, &q); err != nil {
			t.Fatal(err)
		}
		checkPacket(t, &q, &p)
	})

	t.Run("long inner message", func(t *testing.T) {
		p := Packet{Type: PUBLISH, Encapsulated: true, Radius: 0, NodeID: []byte{1, 2}, TopicID: 9, Data: bytes.Repeat([]byte{'d'}, 400)}
		b := Append(nil, &p)
		if !bytes.Equal(b[:9], unhex(t, "05 fe 00 0102 01 0199 0c")) { // 4+5+400 = 409
			t.Fatalf("Append: % x ...", b[:9])
		}
		var q Packet
		if err := Decode(b, &q); err != nil {
			t.Fatal(err)
		}
		checkPacket(t, &q, &p)
	})

	// An inner message in the 3-octet form whose Length's first octet after the 0x01 is
	// 0xFE (65024-65279 octets) is not a nested encapsulation.
	t.Run("inner length 0xFExx", func(t *testing.T) {
		p := Packet{Type: PUBLISH, Encapsulated: true, NodeID: []byte{1}, TopicID: 9, Data: make([]byte, 0xfe10-9)}
		b := Append(nil, &p)
		if !bytes.Equal(b[:8], unhex(t, "04 fe 00 01 01 fe10 0c")) {
			t.Fatalf("Append: % x ...", b[:8])
		}
		var q Packet
		if err := Decode(b, &q); err != nil {
			t.Fatal(err)
		}
		checkPacket(t, &q, &p)
	})
}
