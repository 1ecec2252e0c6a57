//go:build tamago && amd64

package microvm

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/usbarmory/tamago/kvm/virtio"
)

// virtio-net over MMIO, polled, on TamaGo's kvm/virtio transport and split
// queues (virtio 1.x, "Network Device").
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
	// in the reserved range, so in practice QEMU runs the device without
	// VERSION_1 and with the 10-octet header.
	headerLegacy = 10
	headerV1     = 12
	// bufLen holds the longer header and the longest untagged frame.
	bufLen = headerV1 + 1514
)

// vnet is a virtio-net device as a board.NIC.
type vnet struct {
	io  *virtio.MMIO
	mac net.HardwareAddr
	hdr int // virtio_net_hdr length
	rx  *virtio.VirtualQueue
	tx  *virtio.VirtualQueue

	txMu  sync.Mutex
	txBuf []byte
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
	n := &vnet{io: io, mac: mac, hdr: headerLegacy, txBuf: make([]byte, 0, bufLen)}
	if io.NegotiatedFeatures()&featureVersion1 != 0 {
		n.hdr = headerV1
	}
	n.rx = n.queue(rxQueue, virtio.Write)
	n.tx = n.queue(txQueue, 0)
	io.SetQueue(rxQueue, n.rx)
	io.SetQueue(txQueue, n.tx)
	io.SetReady()
	io.QueueNotify(rxQueue)
	return n, nil
}

func (n *vnet) queue(index int, flags uint16) *virtio.VirtualQueue {
	size := n.io.MaxQueueSize(index)
	if size > 256 {
		size = 256
	}
	q := &virtio.VirtualQueue{}
	q.Init(size, bufLen, flags)
	n.io.SetQueueSize(index, size)
	return q
}

// MAC implements board.NIC.
func (n *vnet) MAC() net.HardwareAddr { return n.mac }

// Transmit implements board.NIC: a zero header (no offloads), then the frame.
func (n *vnet) Transmit(frame []byte) error {
	if len(frame) > bufLen-n.hdr {
		return fmt.Errorf("microvm: %d-octet frame too long", len(frame))
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	b := n.txBuf[:n.hdr]
	clear(b)
	b = append(b, frame...)
	used := n.tx.Used.Index()
	n.tx.Push(b)
	n.io.QueueNotify(txQueue)
	// Wait for the device to take the buffer before the next Push: the queue's
	// descriptors are recycled from the used ring, and one pushed while the device
	// still holds the previous was seen to go out with the next frame's bytes
	// (duplicated and lost datagrams under QEMU). The device answers within
	// microseconds; the bound only keeps a wedged device from hanging the stack.
	for deadline := time.Now().Add(10 * time.Millisecond); n.tx.Used.Index() == used && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	return nil
}

// Receive implements board.NIC.
func (n *vnet) Receive(buf []byte) (int, bool) {
	b := n.rx.Pop()
	if b == nil {
		return 0, false
	}
	n.io.QueueNotify(rxQueue) // the buffer is available again
	// The header's flags and GSO fields are unused: no offloads negotiated.
	if len(b) <= n.hdr {
		return 0, true
	}
	return copy(buf, b[n.hdr:]), true
}
