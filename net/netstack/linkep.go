package netstack

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/musqratt/musqratt/board"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// DefaultTxWait is how long a frame waits for room when the NIC's transmit ring is
// full ([board.ErrTxFull]) before it is given up and counted.
const DefaultTxWait = 5 * time.Millisecond

// InterfaceStats counts what one interface's link endpoint did with frames.
type InterfaceStats struct {
	MAC net.HardwareAddr // the NIC's address

	TxFrames    uint64 // frames the NIC took
	TxBusy      uint64 // frames that found the NIC's ring full (board.ErrTxFull) and waited
	TxQueueFull uint64 // frames given up after the NIC stayed full for the TxWait bound
	TxNICErrors uint64 // frames the NIC refused with any other error (or offered after stop)
	RxFrames    uint64 // frames taken from the NIC and handed to the stack
	RxDropped   uint64 // frames taken from the NIC and dropped (runts; the stack not attached)

	LastTxError error // the NIC's most recent refusal other than ErrTxFull, or nil
}

// linkEndpoint is the stack's view of a board.NIC: a gVisor link endpoint that does
// Ethernet framing itself and hands every outbound frame to the NIC synchronously,
// from the goroutine that wrote the packet. There is no queue between the stack and
// the NIC, so nothing is discarded unseen: a frame the NIC does not take is counted
// and its error goes back up the stack to the write that caused it.
//
// It also serves as the NIC's queueing discipline (stack.NICOptions.QDisc), so that
// gVisor's default one, which builds a packet list per packet, is not in the path.
type linkEndpoint struct {
	nic    board.NIC
	mac    tcpip.LinkAddress
	txWait time.Duration

	mtu        atomic.Uint32
	dispatcher atomic.Pointer[dispatcherBox]
	stopped    atomic.Bool

	txMu  sync.Mutex
	frame []byte // the flattened outbound frame, reused; guarded by txMu

	txFrames, txBusy, txQueueFull, txNICErrors atomic.Uint64
	rxFrames, rxDropped                        atomic.Uint64

	errMu     sync.Mutex
	lastTxErr error
}

// dispatcherBox lets an interface value live in an atomic.Pointer.
type dispatcherBox struct{ d stack.NetworkDispatcher }

var (
	_ stack.LinkEndpoint       = (*linkEndpoint)(nil)
	_ stack.QueueingDiscipline = (*linkEndpoint)(nil)
)

func newLinkEndpoint(nic board.NIC, txWait time.Duration) *linkEndpoint {
	if txWait <= 0 {
		txWait = DefaultTxWait
	}
	e := &linkEndpoint{
		nic:    nic,
		mac:    tcpip.LinkAddress(nic.MAC()),
		txWait: txWait,
		frame:  make([]byte, 0, maxFrame),
	}
	e.mtu.Store(MTU)
	return e
}

// MTU implements stack.LinkEndpoint: the IP MTU (the Ethernet header is not in it).
func (e *linkEndpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *linkEndpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint.
func (*linkEndpoint) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (e *linkEndpoint) LinkAddress() tcpip.LinkAddress { return e.mac }

// SetLinkAddress implements stack.LinkEndpoint; the NIC's address is fixed.
func (*linkEndpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint: Ethernet needs ARP and NDP.
func (*linkEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}

// Attach implements stack.LinkEndpoint.
func (e *linkEndpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		return
	}
	e.dispatcher.Store(&dispatcherBox{d})
}

// IsAttached implements stack.LinkEndpoint.
func (e *linkEndpoint) IsAttached() bool { return e.dispatcher.Load() != nil }

// Wait implements stack.LinkEndpoint: the receive goroutine belongs to the iface.
func (*linkEndpoint) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*linkEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint: it pushes the Ethernet header.
func (*linkEndpoint) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint: it consumes the Ethernet header.
func (*linkEndpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}

// Close implements stack.LinkEndpoint and stack.QueueingDiscipline: frames offered
// afterwards are refused.
func (e *linkEndpoint) Close() { e.stopped.Store(true) }

// SetOnCloseAction implements stack.LinkEndpoint.
func (*linkEndpoint) SetOnCloseAction(func()) {}

// WritePackets implements stack.LinkEndpoint. It stops at the first frame the NIC
// does not take and reports why.
func (e *linkEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for i, pkt := range pkts.AsSlice() {
		if err := e.WritePacket(pkt); err != nil {
			return i, err
		}
	}
	return pkts.Len(), nil
}

// WritePacket implements stack.QueueingDiscipline: pkt (its Ethernet header already
// pushed) is flattened into one frame, padded to the Ethernet minimum and handed to
// the NIC. While the NIC answers [board.ErrTxFull] it is offered again, yielding in
// between, for up to txWait; then it is counted as TxQueueFull and the error is
// ErrNoBufferSpace. Any other refusal is counted as TxNICErrors and reported as
// ErrAborted (see [UDPBind.SendBatch] for how these reach the caller).
func (e *linkEndpoint) WritePacket(pkt *stack.PacketBuffer) tcpip.Error {
	e.txMu.Lock()
	defer e.txMu.Unlock()
	if e.stopped.Load() {
		e.txNICErrors.Add(1)
		return &tcpip.ErrAborted{}
	}
	frame := e.frame[:0]
	views, off := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if off >= len(b) {
			off -= len(b)
			continue
		}
		frame = append(frame, b[off:]...)
		off = 0
	}
	for len(frame) < minFrame {
		frame = append(frame, 0)
	}
	e.frame = frame[:0]

	return e.transmit(frame)
}

// transmit hands frame to the NIC, waiting (bounded, yielding) while its transmit
// ring is full, and counts the outcome. Called with txMu held.
func (e *linkEndpoint) transmit(frame []byte) tcpip.Error {
	var start time.Time
	for {
		err := e.nic.Transmit(frame)
		if err == nil {
			e.txFrames.Add(1)
			return nil
		}
		if !errors.Is(err, board.ErrTxFull) {
			e.txNICErrors.Add(1)
			e.errMu.Lock()
			e.lastTxErr = err
			e.errMu.Unlock()
			return &tcpip.ErrAborted{}
		}
		now := time.Now()
		if start.IsZero() {
			e.txBusy.Add(1)
			start = now
		} else if now.Sub(start) >= e.txWait {
			e.txQueueFull.Add(1)
			return &tcpip.ErrNoBufferSpace{}
		}
		runtime.Gosched()
	}
}

// transmitRaw sends a frame built outside the stack (the gratuitous ARP) through
// the same bounded wait and counters.
func (e *linkEndpoint) transmitRaw(frame []byte) error {
	e.txMu.Lock()
	defer e.txMu.Unlock()
	switch e.transmit(frame).(type) {
	case nil:
		return nil
	case *tcpip.ErrNoBufferSpace:
		return fmt.Errorf("transmit ring full for %v: %w", e.txWait, board.ErrTxFull)
	}
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.lastTxErr
}

// deliver hands one received frame (its payload is pkt's whole data) to the stack;
// the caller keeps its reference to pkt.
func (e *linkEndpoint) deliver(pkt *stack.PacketBuffer) {
	box := e.dispatcher.Load()
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if box == nil || !ok {
		e.rxDropped.Add(1)
		return
	}
	eth := header.Ethernet(hdr)
	switch dst := eth.DestinationAddress(); {
	case dst == header.EthernetBroadcastAddress:
		pkt.PktType = tcpip.PacketBroadcast
	case header.IsMulticastEthernetAddress(dst):
		pkt.PktType = tcpip.PacketMulticast
	case dst == e.mac:
		pkt.PktType = tcpip.PacketHost
	default:
		pkt.PktType = tcpip.PacketOtherHost
	}
	e.rxFrames.Add(1)
	box.d.DeliverNetworkPacket(eth.Type(), pkt)
}

func (e *linkEndpoint) stats() InterfaceStats {
	e.errMu.Lock()
	last := e.lastTxErr
	e.errMu.Unlock()
	return InterfaceStats{
		MAC:         net.HardwareAddr(append([]byte(nil), e.mac...)),
		TxFrames:    e.txFrames.Load(),
		TxBusy:      e.txBusy.Load(),
		TxQueueFull: e.txQueueFull.Load(),
		TxNICErrors: e.txNICErrors.Load(),
		RxFrames:    e.rxFrames.Load(),
		RxDropped:   e.rxDropped.Load(),
		LastTxError: last,
	}
}
