package serial

import (
	"testing"

	"github.com/musqratt/musqratt/broker/packet"
)

// FuzzDeframe feeds arbitrary octets in arbitrary chunks (the first octet of the
// input picks the chunk size, a chunk of 0xff octets the quiet line): nothing
// panics or wedges, every frame returned decodes and fits MaxFrame, and every octet
// is accounted for (returned in a frame, skipped, or still held).
func FuzzDeframe(f *testing.F) {
	f.Add([]byte{0x00, 0x02, 0x17, 0x07, 0x0d, 0x00, 0x01, 0x00, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		chunk := 1 + int(in[0]%64)
		in = in[1:]
		d := NewDeframer(300)
		var framed uint64
		var p packet.Packet
		take := func() {
			for fr := d.Next(); fr != nil; fr = d.Next() {
				if len(fr) > 300 {
					t.Fatalf("frame of %d octets", len(fr))
				}
				if err := packet.Decode(fr, &p); err != nil {
					t.Fatalf("frame % x does not decode: %v", fr, err)
				}
				framed += uint64(len(fr))
			}
		}
		for len(in) > 0 {
			n := min(chunk, len(in))
			for w := in[:n]; len(w) > 0; {
				k := d.Write(w)
				w = w[k:]
				take()
			}
			if in[0] == 0xff {
				d.Expire()
				take()
			}
			in = in[n:]
		}
		d.Expire()
		take()
		s := d.Stats()
		if d.Buffered() != 0 {
			t.Fatalf("%d octets held after the line went quiet", d.Buffered())
		}
		if framed+s.Skipped != s.Octets {
			t.Fatalf("octets %d = framed %d + skipped %d?", s.Octets, framed, s.Skipped)
		}
	})
}
