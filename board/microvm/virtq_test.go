package microvm

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"unsafe"
)

// fakeDevice is the device side of a virtqueue as the spec describes it,
// run in the test's goroutine: it takes descriptors from the available ring
// in order and returns them through the used ring. It fails the test when the
// driver offers a descriptor the device already holds (tamago v1.26.0's Pop
// did) or changes a transmit buffer while the device holds it.
type fakeDevice struct {
	t         *testing.T
	q         *virtq
	bufsAddr  uint64
	lastAvail uint16
	usedIdx   uint16
	held      map[uint16][]byte // descriptor → its contents when taken
}

const fakeBufsAddr = 0x3000_0000

func newFakeQueue(t *testing.T, n, bufLen int, flags uint16) (*virtq, *fakeDevice) {
	total, _, _ := virtqLayout(n)
	// Page-aligned ring memory, as dma.Reserve gives it on the board.
	raw := make([]byte, total+ringAlign)
	off := (ringAlign - int(uintptr(unsafe.Pointer(&raw[0]))%ringAlign)) % ringAlign
	mem := raw[off : off+total]
	bufs := make([]byte, n*bufLen)
	q, err := newVirtq(n, mem, 0x3010_0000, bufs, fakeBufsAddr, bufLen, flags)
	if err != nil {
		t.Fatal(err)
	}
	return q, &fakeDevice{t: t, q: q, bufsAddr: fakeBufsAddr, held: map[uint16][]byte{}}
}

// take returns the next offered descriptor, checking it.
func (d *fakeDevice) take() (uint16, []byte, bool) {
	d.t.Helper()
	idx := binary.LittleEndian.Uint16(d.q.avail[2:])
	if idx == d.lastAvail {
		return 0, nil, false
	}
	if n := idx - d.lastAvail; int(n) > int(d.q.size) {
		d.t.Fatalf("avail.idx %d is %d ahead of the device's %d (size %d)", idx, n, d.lastAvail, d.q.size)
	}
	id := binary.LittleEndian.Uint16(d.q.avail[4+2*int(d.lastAvail%d.q.size):])
	d.lastAvail++
	if id >= d.q.size {
		d.t.Fatalf("offered descriptor %d of %d", id, d.q.size)
	}
	if _, ok := d.held[id]; ok {
		d.t.Fatalf("descriptor %d offered while the device holds it", id)
	}
	desc := d.q.desc[int(id)*descLen:]
	addr := binary.LittleEndian.Uint64(desc)
	length := binary.LittleEndian.Uint32(desc[8:])
	if want := d.bufsAddr + uint64(int(id)*d.q.bufLen); addr != want {
		d.t.Fatalf("descriptor %d at %#x, want %#x", id, addr, want)
	}
	if int(length) > d.q.bufLen {
		d.t.Fatalf("descriptor %d: length %d > %d", id, length, d.q.bufLen)
	}
	b := d.q.bufs[int(id)*d.q.bufLen:][:length]
	d.held[id] = append([]byte(nil), b...)
	return id, b, true
}

// give returns descriptor id with length octets written.
func (d *fakeDevice) give(id uint16, length uint32) {
	d.t.Helper()
	was, ok := d.held[id]
	if !ok {
		d.t.Fatalf("device gives back descriptor %d it does not hold", id)
	}
	if d.q.desc[int(id)*descLen+12]&descFlagWrite == 0 {
		// A transmit buffer: the driver must not have touched it meanwhile.
		if now := d.q.bufs[int(id)*d.q.bufLen:][:len(was)]; string(now) != string(was) {
			d.t.Fatalf("transmit descriptor %d changed while the device held it", id)
		}
	}
	delete(d.held, id)
	e := 4 + 8*int(d.usedIdx%d.q.size)
	binary.LittleEndian.PutUint32(d.q.used[e:], uint32(id))
	binary.LittleEndian.PutUint32(d.q.used[e+4:], length)
	d.usedIdx++
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&d.q.used[0])), uint32(d.usedIdx)<<16|uint32(binary.LittleEndian.Uint16(d.q.used)))
}

// TestVirtqReceive: the device fills buffers in bursts of any size, the driver
// takes a random number at a time and offers each back only after reading it;
// every frame arrives once, in order, with its own contents, across several
// wraps of the 16-bit indices.
func TestVirtqReceive(t *testing.T) {
	const n, bufLen, frames = 16, 64, 300_000
	q, dev := newFakeQueue(t, n, bufLen, descFlagWrite)
	for id := range q.size {
		q.offer(id, bufLen)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var sent, got uint64
	for got < frames {
		for k := r.IntN(n + 1); k > 0; k-- {
			id, b, ok := dev.take()
			if !ok {
				break
			}
			binary.LittleEndian.PutUint64(b, sent)
			l := 8 + uint32(sent%uint64(bufLen-8))
			dev.give(id, l)
			sent++
		}
		for k := r.IntN(n + 1); k > 0; k-- {
			id, l, ok, err := q.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			b := q.buf(id)[:l]
			if s := binary.LittleEndian.Uint64(b); s != got {
				t.Fatalf("frame %d arrived as %d", got, s)
			}
			if want := 8 + uint32(got%uint64(bufLen-8)); l != want {
				t.Fatalf("frame %d: length %d, want %d", got, l, want)
			}
			got++
			q.offer(id, bufLen)
		}
	}
	if q.availIdx != uint16((got+n)%65536) || q.usedIdx != uint16(got%65536) {
		t.Errorf("indices avail %d used %d after %d frames", q.availIdx, q.usedIdx, got)
	}
}

// TestVirtqTransmit: the driver offers frames while it has free descriptors,
// the device sends them and returns them in any order; no buffer changes while
// the device holds it, and each frame goes out with its own contents.
func TestVirtqTransmit(t *testing.T) {
	const n, bufLen, frames = 8, 32, 200_000
	q, dev := newFakeQueue(t, n, bufLen, 0)
	free := []uint16{}
	for id := range q.size {
		free = append(free, id)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var queued, out uint64
	var held []uint16
	full := 0
	for out < frames {
		for k := r.IntN(2 * n); k > 0; k-- {
			for {
				id, _, ok, err := q.next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				free = append(free, id)
			}
			if len(free) == 0 {
				full++
				break
			}
			id := free[len(free)-1]
			free = free[:len(free)-1]
			binary.LittleEndian.PutUint64(q.buf(id), queued)
			q.offer(id, 8)
			queued++
		}
		for {
			id, b, ok := dev.take()
			if !ok {
				break
			}
			if s := binary.LittleEndian.Uint64(b); s != out {
				t.Fatalf("frame %d went out as %d", out, s)
			}
			out++
			held = append(held, id)
		}
		r.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		k := r.IntN(len(held) + 1)
		for _, id := range held[:k] {
			dev.give(id, 0)
		}
		held = append(held[:0], held[k:]...)
	}
	if full == 0 {
		t.Error("the ring never filled: the test did not exercise it")
	}
}

func TestVirtqNotify(t *testing.T) {
	q, dev := newFakeQueue(t, 4, 16, 0)
	if a, u := q.areas(); a != 4*descLen || u != ringAlign || len(q.avail) != int(u-a) || len(q.used) != 6+8*4 {
		t.Errorf("areas at %d and %d, lengths %d and %d", a, u, len(q.avail), len(q.used))
	}
	q.offer(0, 1)
	if !q.needsNotify() {
		t.Error("needsNotify false with used.flags 0")
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&q.used[0])), usedFlagNoNotify)
	q.offer(1, 1)
	if q.needsNotify() {
		t.Error("needsNotify true with NO_NOTIFY set")
	}
	if got := binary.LittleEndian.Uint16(q.avail); got != availFlagNoInterrupt {
		t.Errorf("avail.flags %#x, want NO_INTERRUPT", got)
	}
	_ = dev
}

// TestVirtqDeviceErrors: a used ring naming a descriptor the device does not
// hold, or running ahead of what was offered, is reported, not trusted.
func TestVirtqDeviceErrors(t *testing.T) {
	q, _ := newFakeQueue(t, 4, 16, descFlagWrite)
	q.offer(2, 16)
	binary.LittleEndian.PutUint32(q.used[4:], 3) // descriptor 3: never offered
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&q.used[0])), 1<<16)
	if _, _, _, err := q.next(); !errors.Is(err, errDevice) {
		t.Errorf("used entry for an unoffered descriptor: err %v", err)
	}
	q2, _ := newFakeQueue(t, 4, 16, descFlagWrite)
	q2.offer(0, 16)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&q2.used[0])), 2<<16)
	if _, _, _, err := q2.next(); !errors.Is(err, errDevice) {
		t.Errorf("used.idx 2 with one offered: err %v", err)
	}
	if _, err := newVirtq(6, make([]byte, 1<<16), 0, make([]byte, 1<<10), 0, 16, 0); err == nil {
		t.Error("a queue of 6 accepted")
	}
}
