//go:build tamago && amd64

package microvm

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/musqratt/musqratt/board"
	"github.com/usbarmory/tamago/dma"
	"github.com/usbarmory/tamago/kvm/virtio"
)

// virtio-net over MMIO, polled: TamaGo's kvm/virtio MMIO transport for the
// device's registers and feature negotiation, this board's own split
// virtqueues (virtq.go) for the rings.
const (
	virtioMMIOBase  = 0xfeb00000 // microvm's virtio-mmio transports, 512 octets apart
	virtioMMIOSlots = 24
	virtioNetID     = 1

	featureMAC = 1 << 5

	rxQueue = 0
	txQueue = 1

	featureVersion1 = 1 << 32

	// struct virtio_net_hdr is 12 octets (with num_buffers) once
	// VIRTIO_F_VERSION_1 is negotiated, 10 otherwise. TamaGo v1.26.0's
	// transport negotiates only the bits the driver asks for that are also
	// in the reserved range (24-49): VERSION_1 (bit 32) yes, VIRTIO_NET_F_MAC
	// (bit 5) never. Under QEMU 7.2 with virtio-mmio.force-legacy=false the
	// boot line shows features 0x100000000 and the 12-octet header.
	headerLegacy = 10
	headerV1     = 12
	// bufLen holds the longer header and the longest untagged frame.
	bufLen = headerV1 + 1514

	maxQueue = 256

	// virtio-mmio (version 2) queue registers, set here because TamaGo's
	// MMIO.SetQueue takes its own VirtualQueue.
	regQueueSel       = 0x030
	regQueueNum       = 0x038
	regQueueReady     = 0x044
	regQueueDescLow   = 0x080
	regQueueDescHigh  = 0x084
	regQueueAvailLow  = 0x090
	regQueueAvailHigh = 0x094
	regQueueUsedLow   = 0x0a0
	regQueueUsedHigh  = 0x0a4
)

func mmioRead32(addr uintptr) uint32
func mmioWrite32(addr uintptr, val uint32)

// vnet is a virtio-net device as a board.NIC.
type vnet struct {
	io  *virtio.MMIO
	mac net.HardwareAddr
	hdr int // virtio_net_hdr length

	rxMu sync.Mutex
	rx   *virtq

	txMu sync.Mutex
	tx   *virtq
	free []uint16 // transmit descriptors the driver owns

	// errors from a device that broke its rings, counted and the first kept.
	errMu    sync.Mutex
	ringErr  error
	ringErrs uint64
}

func openVirtioNet(mac net.HardwareAddr) (*vnet, error) {
	var io *virtio.MMIO
	for slot := virtioMMIOSlots - 1; slot >= 0; slot-- {
		t := &virtio.MMIO{Base: uint32(virtioMMIOBase + 0x200*slot)}
		if t.DeviceID() == virtioNetID {
			io = t
			break
		}
	}
	if io == nil {
		return nil, errors.New("microvm: no virtio-net device (QEMU: -device virtio-net-device,netdev=...)")
	}
	if err := io.Init(featureMAC | featureVersion1); err != nil {
		return nil, fmt.Errorf("microvm: virtio-net at %#x: %w", io.Base, err)
	}
	if mac == nil {
		if io.NegotiatedFeatures()&featureMAC == 0 {
			return nil, errors.New("microvm: virtio-net offers no MAC and none was configured")
		}
		mac = net.HardwareAddr(io.Config(6))
	}
	n := &vnet{io: io, mac: mac, hdr: headerLegacy}
	if io.NegotiatedFeatures()&featureVersion1 != 0 {
		n.hdr = headerV1
	}
	var err error
	if n.rx, err = n.queue(rxQueue, descFlagWrite); err != nil {
		return nil, err
	}
	if n.tx, err = n.queue(txQueue, 0); err != nil {
		return nil, err
	}
	n.free = make([]uint16, 0, n.tx.size)
	for id := int(n.tx.size) - 1; id >= 0; id-- {
		n.free = append(n.free, uint16(id))
	}
	// Every receive buffer is the device's from the start.
	for id := range n.rx.size {
		n.rx.offer(id, bufLen)
	}
	io.SetReady()
	io.QueueNotify(rxQueue)
	print("microvm: virtio-net at ", hex(uint64(io.Base)), ": features ", hex(io.NegotiatedFeatures()), ", header ", n.hdr,
		" octets, ", n.rx.size, " receive and ", n.tx.size, " transmit descriptors\n")
	return n, nil
}

// queue sets up virtqueue index with at most maxQueue entries (a power of 2)
// in DMA memory and tells the device where it is.
func (n *vnet) queue(index int, flags uint16) (*virtq, error) {
	size := n.io.MaxQueueSize(index)
	if size == 0 {
		return nil, fmt.Errorf("microvm: virtio-net queue %d not available", index)
	}
	size = min(size, maxQueue)
	for size&(size-1) != 0 {
		size &= size - 1 // a split queue's size is a power of 2
	}
	total, _, _ := virtqLayout(size)
	memAddr, mem := dma.Reserve(total, ringAlign)
	bufsAddr, bufs := dma.Reserve(size*bufLen, 64)
	q, err := newVirtq(size, mem, uint64(memAddr), bufs, uint64(bufsAddr), bufLen, flags)
	if err != nil {
		return nil, fmt.Errorf("microvm: virtio-net queue %d: %w", index, err)
	}
	availOff, usedOff := q.areas()
	base := uintptr(n.io.Base)
	desc := uint64(memAddr)
	mmioWrite32(base+regQueueSel, uint32(index))
	mmioWrite32(base+regQueueNum, uint32(size))
	mmioWrite32(base+regQueueDescLow, uint32(desc))
	mmioWrite32(base+regQueueDescHigh, uint32(desc>>32))
	mmioWrite32(base+regQueueAvailLow, uint32(desc+availOff))
	mmioWrite32(base+regQueueAvailHigh, uint32((desc+availOff)>>32))
	mmioWrite32(base+regQueueUsedLow, uint32(desc+usedOff))
	mmioWrite32(base+regQueueUsedHigh, uint32((desc+usedOff)>>32))
	mmioWrite32(base+regQueueReady, 1)
	if mmioRead32(base+regQueueReady) != 1 {
		return nil, fmt.Errorf("microvm: virtio-net queue %d: the device did not take it", index)
	}
	return q, nil
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

func (n *vnet) ringError(err error) {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	if n.ringErrs == 0 {
		n.ringErr = err
		print("microvm: virtio-net: ", err.Error(), "\n")
	}
	n.ringErrs++
}

// MAC implements board.NIC.
func (n *vnet) MAC() net.HardwareAddr { return n.mac }

// Transmit implements board.NIC: a zero header (no offloads), then the frame,
// in a descriptor of its own. Descriptors the device has sent are taken back
// from the used ring first; when none is free the frame is not taken and the
// error wraps board.ErrTxFull (the caller waits and retries).
func (n *vnet) Transmit(frame []byte) error {
	if len(frame) > bufLen-n.hdr {
		return fmt.Errorf("microvm: %d-octet frame too long", len(frame))
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	n.reclaimLocked()
	if len(n.free) == 0 {
		return fmt.Errorf("microvm: virtio-net: %d frames in flight: %w", n.tx.inFlight, board.ErrTxFull)
	}
	id := n.free[len(n.free)-1]
	n.free = n.free[:len(n.free)-1]
	b := n.tx.buf(id)
	clear(b[:n.hdr])
	copy(b[n.hdr:], frame)
	n.tx.offer(id, n.hdr+len(frame))
	if n.tx.needsNotify() {
		n.io.QueueNotify(txQueue)
	}
	return nil
}

// reclaimLocked takes back every transmit descriptor the device has returned.
func (n *vnet) reclaimLocked() {
	for {
		id, _, ok, err := n.tx.next()
		if err != nil {
			n.ringError(err)
			return
		}
		if !ok {
			return
		}
		n.free = append(n.free, id)
	}
}

// Receive implements board.NIC: the oldest frame the device has written is
// copied into buf, and only then is its buffer offered to the device again.
func (n *vnet) Receive(buf []byte) (int, bool) {
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	id, length, ok, err := n.rx.next()
	if err != nil {
		n.ringError(err)
		return 0, false
	}
	if !ok {
		return 0, false
	}
	// The header's flags and GSO fields are unused: no offloads negotiated.
	var c int
	if l := min(int(length), bufLen); l > n.hdr {
		c = copy(buf, n.rx.buf(id)[n.hdr:l])
	}
	n.rx.offer(id, bufLen)
	if n.rx.needsNotify() {
		n.io.QueueNotify(rxQueue)
	}
	return c, true
}
