package microvm

// The driver side of a split virtqueue (Virtual I/O Device (VIRTIO) Version
// 1.2, 2.7 "Split Virtqueues"), written for this board instead of using
// tamago v1.26.0's kvm/virtio VirtualQueue: that one's Pop advances the
// available index before it writes the ring slot, so it publishes a stale
// slot (a receive buffer already offered) and the device fills one buffer
// twice while the driver still reads it, and its Push recycles transmit
// descriptors from the used ring at the wrong positions. (Fixed upstream in
// tamago dbe0c59, first released in v1.26.2, which this module cannot use.)
//
// This file is plain Go with no tamago import, so the ring logic is tested
// hosted against a simulated device (virtq_test.go); nic.go puts it in DMA
// memory and on the MMIO transport.
//
// Ownership: each descriptor is either the driver's or the device's. The
// driver offers one by writing its number into the next available-ring slot
// and then publishing avail.idx; the device returns it through the used ring.
// A receive buffer is offered again only after its contents were copied out;
// a transmit buffer is written only while the driver owns it. Indices are
// free-running 16-bit counters (slot = index mod size, size a power of 2, so
// the arithmetic is right across the wrap at 2^16).
//
// Ordering: the descriptor and ring-slot stores come before the avail.idx
// store, which is an atomic 32-bit store (XCHG on amd64: a full barrier, and
// the Go compiler does not move plain stores past it); the used.flags load
// that decides whether to notify comes after that barrier (the store-load
// order the spec's notification suppression needs); used.idx is read with an
// atomic load before the used element and the buffer it names are read.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

const (
	descLen = 16 // struct virtq_desc: addr u64, len u32, flags u16, next u16

	descFlagWrite = 2 // VIRTQ_DESC_F_WRITE: the device writes the buffer

	availFlagNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT: we poll
	usedFlagNoNotify     = 1 // VIRTQ_USED_F_NO_NOTIFY: the device will look by itself

	ringAlign = 4096 // page-align each area (more than the 16/2/4 the spec needs)
)

// virtqLayout returns how much memory a queue of n entries takes and where
// its available and used areas start (the descriptor table is at 0).
func virtqLayout(n int) (total, availOff, usedOff int) {
	availOff = descLen * n
	usedOff = alignUp(availOff+6+2*n, ringAlign) // flags, idx, ring[n], used_event
	total = usedOff + 6 + 8*n                    // flags, idx, ring[n]{id, len}, avail_event
	return
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

// virtq is one split virtqueue.
type virtq struct {
	size uint16
	mask uint16

	desc, avail, used []byte // the three areas, in device-visible memory

	bufs   []byte // size buffers of bufLen octets, device-visible
	bufLen int

	availIdx uint16 // entries published in the available ring so far
	usedIdx  uint16 // used entries consumed so far
	device   []bool // device[id]: descriptor id is offered and not returned yet
	inFlight int    // how many are
}

// newVirtq lays a queue of n entries (a power of 2) over mem, which must be
// at least virtqLayout(n)'s total long, at physical address memAddr, with
// descriptor i pointing at bufs[i*bufLen:(i+1)*bufLen] (physical bufsAddr +
// i*bufLen). flags go into every descriptor (descFlagWrite for a receive
// queue). No descriptor is offered yet.
func newVirtq(n int, mem []byte, memAddr uint64, bufs []byte, bufsAddr uint64, bufLen int, flags uint16) (*virtq, error) {
	if n <= 0 || n > 1<<15 || n&(n-1) != 0 {
		return nil, fmt.Errorf("virtqueue size %d: want a power of 2 up to 32768", n)
	}
	total, availOff, usedOff := virtqLayout(n)
	if len(mem) < total {
		return nil, fmt.Errorf("virtqueue of %d: %d octets of ring memory, need %d", n, len(mem), total)
	}
	if len(bufs) < n*bufLen {
		return nil, fmt.Errorf("virtqueue of %d: %d octets of buffers, need %d", n, len(bufs), n*bufLen)
	}
	if memAddr%ringAlign != 0 || uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, errors.New("virtqueue: ring memory not aligned")
	}
	clear(mem[:total])
	q := &virtq{
		size:   uint16(n),
		mask:   uint16(n - 1),
		desc:   mem[:availOff],
		avail:  mem[availOff:usedOff],
		used:   mem[usedOff:total],
		bufs:   bufs[:n*bufLen],
		bufLen: bufLen,
		device: make([]bool, n),
	}
	for i := range n {
		d := q.desc[i*descLen:]
		binary.LittleEndian.PutUint64(d[0:], bufsAddr+uint64(i*bufLen))
		binary.LittleEndian.PutUint32(d[8:], uint32(bufLen))
		binary.LittleEndian.PutUint16(d[12:], flags)
		binary.LittleEndian.PutUint16(d[14:], 0)
	}
	q.publish()
	return q, nil
}

// areas returns the offsets of the available and used areas from the
// descriptor table (for the transport's queue address registers).
func (q *virtq) areas() (availOff, usedOff uint64) {
	_, a, u := virtqLayout(int(q.size))
	return uint64(a), uint64(u)
}

// buf returns descriptor id's buffer.
func (q *virtq) buf(id uint16) []byte {
	off := int(id) * q.bufLen
	return q.bufs[off : off+q.bufLen : off+q.bufLen]
}

// offer hands descriptor id, holding length octets (the buffer's capacity
// for a receive queue), to the device: descriptor length, then the ring slot,
// then avail.idx. The caller must own id.
func (q *virtq) offer(id uint16, length int) {
	if q.device[id] {
		panic(fmt.Sprintf("virtqueue: descriptor %d offered twice", id))
	}
	q.device[id] = true
	q.inFlight++
	binary.LittleEndian.PutUint32(q.desc[int(id)*descLen+8:], uint32(length))
	binary.LittleEndian.PutUint16(q.avail[4+2*int(q.availIdx&q.mask):], id)
	q.availIdx++
	q.publish()
}

// publish stores avail.flags and avail.idx in one atomic 32-bit store (both
// are the driver's; flags low, idx high, little endian).
func (q *virtq) publish() {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&q.avail[0])), uint32(q.availIdx)<<16|availFlagNoInterrupt)
}

// needsNotify reports whether the device asked to be told of new buffers
// (used.flags without NO_NOTIFY). Call it after offer: its load comes after
// offer's barrier.
func (q *virtq) needsNotify() bool {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&q.used[0])))&usedFlagNoNotify == 0
}

// errDevice is a used ring that breaks the protocol: an index that ran ahead
// of what was offered, or a descriptor returned that the device did not hold.
var errDevice = errors.New("virtqueue: device broke the used ring")

// next returns the oldest buffer the device has returned and not yet taken
// back, with the length the device wrote into it (0 on a transmit queue);
// ok is false when there is none. Taking it makes the driver its owner.
func (q *virtq) next() (id uint16, length uint32, ok bool, err error) {
	idx := uint16(atomic.LoadUint32((*uint32)(unsafe.Pointer(&q.used[0]))) >> 16)
	pending := idx - q.usedIdx
	if pending == 0 {
		return 0, 0, false, nil
	}
	if int(pending) > q.inFlight {
		return 0, 0, false, fmt.Errorf("%w: used.idx %d is %d ahead of %d with %d offered", errDevice, idx, pending, q.usedIdx, q.inFlight)
	}
	e := 4 + 8*int(q.usedIdx&q.mask)
	id32 := atomic.LoadUint32((*uint32)(unsafe.Pointer(&q.used[e])))
	length = atomic.LoadUint32((*uint32)(unsafe.Pointer(&q.used[e+4])))
	q.usedIdx++
	if id32 >= uint32(q.size) || !q.device[id32] {
		return 0, 0, false, fmt.Errorf("%w: used entry %d names descriptor %d, not the device's", errDevice, q.usedIdx-1, id32)
	}
	q.device[id32] = false
	q.inFlight--
	return uint16(id32), length, true, nil
}
