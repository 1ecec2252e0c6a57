package serial

import (
	"encoding/binary"

	"github.com/musqratt/musqratt/broker/packet"
)

// DeframeStats counts what a [Deframer] did with the octets it was given.
type DeframeStats struct {
	Octets   uint64 // octets written
	Frames   uint64 // frames returned by Next
	Skipped  uint64 // octets skipped while resynchronising (noise, or the rest of a broken frame)
	Discards uint64 // runs of skipped octets: each is a lost frame or a burst of noise
	Stalls   uint64 // incomplete frames given up after the line went quiet (see Expire)
}

// status is what a candidate frame at some offset turned out to be.
type status uint8

const (
	needMore status = iota // a plausible header, but the frame is not all there yet
	invalid                // not a frame: a bad length, an unknown type, or it does not decode
	valid                  // a complete frame that decodes as an MQTT-SN message
)

// A Deframer cuts MQTT-SN frames out of a byte stream by their own Length field,
// resynchronising after noise and lost octets (the rules are in the package doc). It
// is sans-IO: octets go in with Write (or Space and Wrote), frames come out of Next,
// and Expire tells it the line went quiet. It never allocates after NewDeframer.
// It is not safe for concurrent use.
type Deframer struct {
	max  int
	buf  []byte
	r, w int // buf[r:w] is buffered

	// staleEnd: the octets before it were buffered when the line last went quiet;
	// an incomplete frame starting there is given up.
	staleEnd int
	inRun    bool // the last octet consumed was skipped
	stalled  bool // a Stall was counted for the current stale region

	pkt   packet.Packet
	stats DeframeStats
}

// NewDeframer returns a Deframer for frames of at most maxFrame octets (at least 2,
// at most 65535; 0 means DefaultMaxFrame).
func NewDeframer(maxFrame int) *Deframer {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	maxFrame = min(max(maxFrame, 2), 65535)
	// Room for the longest frame and a read.
	return &Deframer{max: maxFrame, buf: make([]byte, maxFrame+readChunk)}
}

// MaxFrame is the longest frame accepted.
func (d *Deframer) MaxFrame() int { return d.max }

// Stats returns the counts so far.
func (d *Deframer) Stats() DeframeStats { return d.stats }

// Buffered is how many octets are held (frames not yet returned, an incomplete frame,
// noise not yet skipped).
func (d *Deframer) Buffered() int { return d.w - d.r }

// Space returns the free room at the end of the buffer (compacting it first) for a
// read to fill; Wrote then accounts for the octets written there. Empty when the
// buffer is full: call Next to make room.
func (d *Deframer) Space() []byte {
	d.compact()
	return d.buf[d.w:]
}

// Wrote accounts for n octets written into the slice Space returned.
func (d *Deframer) Wrote(n int) {
	d.w += n
	d.stats.Octets += uint64(n)
}

// Write copies as much of p as there is room for and returns how much that was
// (less than len(p) only when the buffer is full: call Next, then write the rest).
func (d *Deframer) Write(p []byte) int {
	n := copy(d.Space(), p)
	d.Wrote(n)
	return n
}

func (d *Deframer) compact() {
	if d.r == 0 {
		return
	}
	copy(d.buf, d.buf[d.r:d.w])
	d.w -= d.r
	d.staleEnd = max(d.staleEnd-d.r, 0)
	d.r = 0
}

// Expire tells the Deframer the line has been quiet for the inter-byte timeout: an
// incomplete frame among the octets buffered so far will not be completed, and
// decisions that were waiting for more octets are made with what is there.
func (d *Deframer) Expire() {
	d.staleEnd = d.w
	d.stalled = false
}

// Next returns the next frame, or nil when the octets buffered hold none yet. The
// frame aliases the Deframer's buffer: it is valid until the next call of any method.
func (d *Deframer) Next() []byte {
	for d.r < d.w {
		n, st := d.frameAt(d.r)
		switch st {
		case needMore:
			if d.r >= d.staleEnd && !d.full() {
				return nil
			}
			d.skip()
			continue
		case invalid:
			d.skip()
			continue
		}
		f := d.buf[d.r : d.r+n]
		d.r += n
		d.inRun = false
		d.stats.Frames++
		return f
	}
	return nil
}

// skip drops one octet at the head; octets dropped from before a pause of the line
// count that pause as a Stall.
func (d *Deframer) skip() {
	if d.r < d.staleEnd && !d.stalled {
		d.stalled = true
		d.stats.Stalls++
	}
	d.r++
	d.stats.Skipped++
	if !d.inRun {
		d.inRun = true
		d.stats.Discards++
	}
}

// full reports that no more octets fit: waiting for more would wait forever.
func (d *Deframer) full() bool { return d.r == 0 && d.w == len(d.buf) }

// frameAt examines the candidate frame at offset p: its length and whether it is a
// complete, decodable MQTT-SN message.
//
// The size of the body is checked first (bodyFits): that rejects most noise without
// calling packet.Decode, whose error for a malformed message is allocated.
func (d *Deframer) frameAt(p int) (int, status) {
	b := d.buf[p:d.w]
	n, st := frameLen(b, d.max)
	if st != valid {
		return n, st
	}
	if p < d.staleEnd && p+n > d.staleEnd {
		return n, invalid // a frame does not span a pause of the line
	}
	if !bodyFits(b) {
		return n, invalid
	}
	if n > len(b) {
		return n, needMore
	}
	if packet.Decode(b[:n], &d.pkt) != nil {
		return n, invalid
	}
	return n, valid
}

// Body sizes by message type (v1.2, section 5.4): exact for fixed-size messages,
// a minimum (negative: -min) for variable-size ones. A test checks them against
// broker/packet's encoder and decoder.
var bodySize = [256]int16{
	packet.ADVERTISE: 3, packet.SEARCHGW: 1, packet.GWINFO: -1, packet.CONNECT: -4,
	packet.CONNACK: 1, packet.WILLTOPICREQ: 0, packet.WILLTOPIC: -0, packet.WILLMSGREQ: 0,
	packet.WILLMSG: -0, packet.REGISTER: -4, packet.REGACK: 5, packet.PUBLISH: -5,
	packet.PUBACK: 5, packet.PUBCOMP: 2, packet.PUBREC: 2, packet.PUBREL: 2,
	packet.SUBSCRIBE: -3, packet.SUBACK: 6, packet.UNSUBSCRIBE: -3, packet.UNSUBACK: 2,
	packet.PINGREQ: -0, packet.PINGRESP: 0, packet.DISCONNECT: -0, packet.WILLTOPICUPD: -0,
	packet.WILLTOPICRESP: 1, packet.WILLMSGUPD: -0, packet.WILLMSGRESP: 1,
}

// variable marks the types whose bodySize is a minimum (-0 cannot say it).
var variable = [256]bool{
	packet.GWINFO: true, packet.CONNECT: true, packet.WILLTOPIC: true, packet.WILLMSG: true,
	packet.REGISTER: true, packet.PUBLISH: true, packet.SUBSCRIBE: true,
	packet.UNSUBSCRIBE: true, packet.PINGREQ: true, packet.DISCONNECT: true,
	packet.WILLTOPICUPD: true, packet.WILLMSGUPD: true,
}

// bodyFits checks the size of the body of the message (or, for an ENCAPSULATED one,
// of the message inside) f starts with, from its header alone (which frameLen has
// read and found plausible).
func bodyFits(f []byte) bool {
	n, hdr, t, _ := header(f)
	if t == packet.ENCAPSULATED {
		n, hdr, t, _ = header(f[n:])
	}
	body := n - hdr
	want := int(bodySize[t])
	if !variable[t] {
		return body == want
	}
	if t == packet.DISCONNECT {
		return body == 0 || body == 2
	}
	return body >= -want
}

// frameLen reads the length of the frame b starts with from its header (for an
// ENCAPSULATED message, its own header plus the inner message's length): valid
// means the header is plausible (the frame may not be all there), needMore that the
// header itself is incomplete.
func frameLen(b []byte, maxFrame int) (int, status) {
	n, hdr, t, st := header(b)
	if st != valid {
		return 0, st
	}
	if n > maxFrame {
		return 0, invalid
	}
	if t != packet.ENCAPSULATED {
		return n, valid
	}
	if n < hdr+1 { // no room for the Ctrl octet
		return 0, invalid
	}
	if len(b) < n {
		return 0, needMore
	}
	m, _, it, st := header(b[n:])
	if st != valid {
		return 0, st
	}
	if it == packet.ENCAPSULATED || n+m > maxFrame {
		return 0, invalid
	}
	return n + m, valid
}

// header reads the Length and MsgType fields at the start of b.
func header(b []byte) (n, hdr int, t packet.Type, st status) {
	if len(b) < 2 {
		return 0, 0, 0, needMore
	}
	n, hdr, t = int(b[0]), 2, packet.Type(b[1])
	if b[0] == 0x01 {
		if len(b) < 4 {
			return 0, 0, 0, needMore
		}
		n, hdr, t = int(binary.BigEndian.Uint16(b[1:3])), 4, packet.Type(b[3])
	}
	if n < hdr || !t.Defined() {
		return 0, 0, 0, invalid
	}
	return n, hdr, t, valid
}
