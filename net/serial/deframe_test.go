package serial

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/musqratt/musqratt/broker/packet"
)

// publish is a PUBLISH of payload octets of data (7 octets more with a 1-octet
// Length, 9 with a 3-octet one).
func publish(msgID uint16, data int) []byte {
	d := make([]byte, data)
	rng := rand.New(rand.NewPCG(uint64(msgID), uint64(data)))
	for i := range d {
		d[i] = byte(rng.Uint32())
	}
	return packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1),
		TopicID: 7, MsgID: msgID, Data: d})
}

// mixed is a stream of varied messages: PUBLISH of several sizes (both Length forms),
// acknowledgements, PINGREQ, and an encapsulated one.
func mixed(n int, rng *rand.Rand) [][]byte {
	var fs [][]byte
	for i := range n {
		id := uint16(i + 1)
		var f []byte
		switch i % 6 {
		case 0:
			f = publish(id, rng.IntN(40))
		case 1:
			f = packet.Append(nil, &packet.Packet{Type: packet.PUBACK, TopicID: 7, MsgID: id})
		case 2:
			f = packet.Append(nil, &packet.Packet{Type: packet.PINGREQ, ClientID: []byte("c1")})
		case 3:
			f = packet.Append(nil, &packet.Packet{Type: packet.PUBREL, MsgID: id})
		case 4:
			f = packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Encapsulated: true, Radius: 1,
				NodeID: []byte{0x12, 0x34}, TopicID: 9, MsgID: id, Data: []byte("hello")})
		case 5:
			f = publish(id, 250+rng.IntN(20)) // around the 1-/3-octet Length boundary
		}
		fs = append(fs, f)
	}
	return fs
}

// drain returns every frame the deframer has now (copied).
func drain(d *Deframer) [][]byte {
	var out [][]byte
	for f := d.Next(); f != nil; f = d.Next() {
		out = append(out, bytes.Clone(f))
	}
	return out
}

// feed writes all of p (draining frames when the buffer is full) and returns the
// frames that came out.
func feed(d *Deframer, p []byte) [][]byte {
	var out [][]byte
	for len(p) > 0 {
		n := d.Write(p)
		p = p[n:]
		out = append(out, drain(d)...)
	}
	return out
}

func quiet(d *Deframer) [][]byte {
	d.Expire()
	return drain(d)
}

func equalFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: % x, want % x", i, got[i], want[i])
		}
	}
}

// missing says which of want are not in got, in order (got may hold extra frames).
func missing(got, want [][]byte) []int {
	var lost []int
	j := 0
	for i, w := range want {
		k := j
		for k < len(got) && !bytes.Equal(got[k], w) {
			k++
		}
		if k == len(got) {
			lost = append(lost, i)
			continue
		}
		j = k + 1
	}
	return lost
}

// Every length the Length field can express up to MaxFrame, both forms, comes
// through whole and alone.
func TestDeframeEveryLength(t *testing.T) {
	d := NewDeframer(65535)
	for data := 0; data <= 1100; data++ {
		f := publish(uint16(data), data)
		if data >= 249 && f[0] != 0x01 {
			t.Fatalf("PUBLISH of %d octets: Length form % x", len(f), f[:4])
		}
		equalFrames(t, feed(d, f), [][]byte{f})
	}
	big := publish(1, 65535-9)
	equalFrames(t, feed(d, big), [][]byte{big})
	if s := d.Stats(); s.Skipped != 0 || s.Discards != 0 || s.Stalls != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A frame split at every octet boundary is reassembled, and a frame complete at the
// end of a write is delivered at once.
func TestDeframeSplitEveryBoundary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fs := mixed(12, rng)
	stream := bytes.Join(fs, nil)
	for cut := 0; cut <= len(stream); cut++ {
		d := NewDeframer(0)
		got := feed(d, stream[:cut])
		got = append(got, feed(d, stream[cut:])...)
		equalFrames(t, got, fs)
		if d.Buffered() != 0 {
			t.Fatalf("cut %d: %d octets left", cut, d.Buffered())
		}
	}
	// One octet at a time.
	d := NewDeframer(0)
	var got [][]byte
	for i := range stream {
		got = append(got, feed(d, stream[i:i+1])...)
	}
	equalFrames(t, got, fs)
}

func TestDeframeBackToBack(t *testing.T) {
	fs := mixed(200, rand.New(rand.NewPCG(3, 4)))
	d := NewDeframer(0)
	equalFrames(t, feed(d, bytes.Join(fs, nil)), fs)
	if s := d.Stats(); s.Frames != 200 || s.Skipped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// noise is 1..maxNoise random octets.
func noise(maxNoise int, rng *rand.Rand) []byte {
	b := make([]byte, 1+rng.IntN(maxNoise))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// writeChunks writes p in random chunks of 1..64 octets, taking frames as it goes.
func writeChunks(d *Deframer, p []byte, rng *rand.Rand) [][]byte {
	var got [][]byte
	for len(p) > 0 {
		n := min(len(p), 1+rng.IntN(64))
		got = append(got, feed(d, p[:n])...)
		p = p[n:]
	}
	return got
}

// Line noise — bursts of random octets between the frames, the line quiet for a
// moment after each burst as after a glitch, and the frames after it back to back
// in random chunks: every real frame comes through, in order.
func TestDeframeNoise(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		fs := mixed(100, rng)
		d := NewDeframer(0)
		var got [][]byte
		for i, f := range fs {
			if i%5 == 0 {
				got = append(got, writeChunks(d, noise(40, rng), rng)...)
				got = append(got, quiet(d)...)
			}
			got = append(got, writeChunks(d, f, rng)...)
		}
		got = append(got, quiet(d)...)
		if lost := missing(got, fs); len(lost) > 0 {
			t.Errorf("seed %d: frames %v lost; stats %+v", seed, lost, d.Stats())
		}
		if d.Buffered() != 0 {
			t.Errorf("seed %d: %d octets left after the line went quiet", seed, d.Buffered())
		}
		if s := d.Stats(); s.Skipped == 0 || s.Discards == 0 {
			t.Errorf("seed %d: noise not counted: %+v", seed, s)
		}
	}
}

// Noise with no pause after it, back to back with the frames that follow: without a
// checksum nothing can promise those frames (noise can claim a length that runs
// over them and still decode), so this records the figure (go test -run
// NoiseAdjacent -v) and checks that the line recovers at the next pause.
func TestDeframeNoiseAdjacent(t *testing.T) {
	for _, every := range []int{1, 5} {
		total, lost, extra := 0, 0, 0
		for seed := range uint64(100) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs := mixed(100, rng)
			var stream []byte
			for i, f := range fs {
				if i%every == 0 {
					stream = append(stream, noise(30, rng)...)
				}
				stream = append(stream, f...)
			}
			d := NewDeframer(0)
			got := writeChunks(d, stream, rng)
			got = append(got, quiet(d)...)
			l := len(missing(got, fs))
			// However much the noise cost, the line is not wedged: after a pause,
			// clean frames all come through.
			if after := append(writeChunks(d, bytes.Join(fs[:10], nil), rng), quiet(d)...); missing(after, fs[:10]) != nil {
				t.Fatalf("seed %d: the line stays wedged after the noise", seed)
			}
			total, lost, extra = total+len(fs), lost+l, extra+len(got)-(len(fs)-l)
		}
		t.Logf("1-30 random octets before every %d. frame, no pause: %d of %d real frames lost (%.2f%%), %d noise frames delivered",
			every, lost, total, 100*float64(lost)/float64(total), extra)
	}
}

// An octet lost inside a frame loses that frame (counted), and the frames after it
// come through, whichever octet it was, once the line has paused after the broken
// frame (a sender that writes its frames one by one pauses between them).
func TestDeframeDroppedOctet(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fs := mixed(8, rng)
	cases, nextLost := 0, 0
	defer func() { t.Logf("back to back, %d dropped octets cost %d other frames", cases, nextLost) }()
	for k := range fs {
		start := len(bytes.Join(fs[:k], nil))
		for i := range len(fs[k]) {
			cases++
			stream := bytes.Join(fs, nil)
			stream = append(stream[:start+i:start+i], stream[start+i+1:]...)
			d := NewDeframer(0)
			// The broken frame, then a pause of the line, then the others.
			end := start + len(fs[k]) - 1
			got := feed(d, stream[:end])
			got = append(got, quiet(d)...)
			got = append(got, feed(d, stream[end:])...)
			got = append(got, quiet(d)...)
			want := append(append([][]byte{}, fs[:k]...), fs[k+1:]...)
			if lost := missing(got, want); len(lost) > 0 {
				t.Fatalf("octet %d of frame %d dropped: frames %v of the others lost", i, k, lost)
			}
			// Back to back with the next frames, the broken frame may take octets
			// of the next with it (a PUBLISH can still decode): recorded only.
			d2 := NewDeframer(0)
			got2 := append(feed(d2, stream), quiet(d2)...)
			nextLost += len(missing(got2, want))
			for _, g := range got {
				if bytes.Equal(g, fs[k]) {
					t.Fatalf("octet %d of frame %d dropped: the frame came through whole", i, k)
				}
			}
			if s := d.Stats(); s.Discards == 0 {
				t.Fatalf("octet %d of frame %d dropped: nothing counted (%+v)", i, k, s)
			}
		}
	}
}

// A bad Length (0x00, 0x01 with a short 3-octet length, one beyond MaxFrame, one
// pointing past what will ever arrive) does not wedge the line.
func TestDeframeBadLength(t *testing.T) {
	good := mixed(6, rand.New(rand.NewPCG(7, 8)))
	cases := []struct {
		name  string
		bad   []byte
		quiet bool // the frames come through only once the line has been quiet
	}{
		{"zero", []byte{0x00, 0x0c}, false},
		{"one", []byte{0x01}, false},
		{"3-octet too short", []byte{0x01, 0x00, 0x03, 0x0c}, false},
		{"beyond max", []byte{0x01, 0xff, 0xff, 0x0c}, false},
		{"beyond max 2", []byte{0x01, 0x08, 0x01, 0x0c}, false},
		{"undefined type", []byte{0x07, 0x03, 0x20, 0x20, 0x20, 0x20, 0x20}, false},
		{"wrong size", []byte{0xf0, 0x0d}, false}, // PUBACK claiming 240 octets
		{"long 3-octet", []byte{0x01, 0x07, 0xd0, 0x0d}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeframer(0)
			got := feed(d, append(append([]byte{}, tc.bad...), bytes.Join(good, nil)...))
			if !tc.quiet {
				equalFrames(t, got, good)
			}
			got = append(got, quiet(d)...)
			equalFrames(t, got, good)
			if s := d.Stats(); s.Skipped < 1 || s.Discards != 1 {
				t.Fatalf("stats %+v", s)
			}
			// And the line keeps working.
			equalFrames(t, feed(d, good[0]), good[:1])
		})
	}
}

// An incomplete frame that stalls is given up when the line goes quiet, and what
// arrives afterwards is framed afresh.
func TestDeframeStall(t *testing.T) {
	f := publish(1, 20)
	d := NewDeframer(0)
	if got := feed(d, f[:10]); len(got) != 0 {
		t.Fatalf("%d frames from half a frame", len(got))
	}
	if got := quiet(d); len(got) != 0 || d.Buffered() != 0 {
		t.Fatalf("after the timeout: %d frames, %d octets held", len(got), d.Buffered())
	}
	equalFrames(t, feed(d, f), [][]byte{f})
	if s := d.Stats(); s.Stalls != 1 || s.Skipped != 10 || s.Discards != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The stale part is given up even if more octets come before the next look.
	d = NewDeframer(0)
	feed(d, f[:10])
	d.Expire()
	equalFrames(t, feed(d, f), [][]byte{f})
}

// Frames are no longer than MaxFrame, and the buffer never wedges when full.
func TestDeframeMaxFrame(t *testing.T) {
	d := NewDeframer(64)
	long, short := publish(1, 100), publish(2, 10)
	got := feed(d, append(append([]byte{}, long...), short...))
	got = append(got, quiet(d)...)
	if lost := missing(got, [][]byte{short}); len(lost) > 0 {
		t.Fatalf("the short frame after a long one was lost")
	}
	for _, g := range got {
		if len(g) > 64 {
			t.Fatalf("frame of %d octets, max 64", len(g))
		}
	}
}

// Feeding and taking frames allocates nothing.
func TestDeframeAllocs(t *testing.T) {
	stream := bytes.Join(mixed(30, rand.New(rand.NewPCG(9, 10))), nil)
	d := NewDeframer(0)
	a := testing.AllocsPerRun(100, func() {
		for p := stream; len(p) > 0; {
			n := d.Write(p[:min(len(p), 100)])
			p = p[n:]
			for d.Next() != nil {
			}
		}
	})
	if a != 0 {
		t.Fatalf("%.1f allocations per run, want 0", a)
	}
}

// The framing of an ENCAPSULATED message is its header plus the inner message.
func TestDeframeEncapsulated(t *testing.T) {
	inner := &packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("node")}
	var fs [][]byte
	for _, id := range [][]byte{{1}, {1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 300)} {
		p := *inner
		p.Encapsulated, p.NodeID = true, id
		fs = append(fs, packet.Append(nil, &p))
	}
	d := NewDeframer(0)
	equalFrames(t, feed(d, bytes.Join(fs, nil)), fs)
}

func ExampleDeframer() {
	d := NewDeframer(0)
	d.Write([]byte{0x02, 0x17, 0x00, 0x00, 0x04, 0x0e}) // PINGRESP, noise, half a PUBCOMP
	for f := d.Next(); f != nil; f = d.Next() {
		fmt.Printf("% x\n", f)
	}
	d.Write([]byte{0x00, 0x02}) // the rest of the PUBCOMP
	for f := d.Next(); f != nil; f = d.Next() {
		fmt.Printf("% x\n", f)
	}
	fmt.Printf("%+v\n", d.Stats())
	// Output:
	// 02 17
	// 04 0e 00 02
	// {Octets:8 Frames:2 Skipped:2 Discards:1 Stalls:0}
}
