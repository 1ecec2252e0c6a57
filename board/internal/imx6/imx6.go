//go:build tamago && arm

// Package imx6 adapts the NXP i.MX6UL/ULL parts TamaGo drives (ENET MACs,
// the Arm generic timer) to the interfaces in package board. Boards built on
// that SoC (board/mx6ullevk, board/usbarmory) share it.
package imx6

import (
	"errors"
	"fmt"
	"net"
	"runtime/goos"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/board/internal/semihosting"
	"github.com/usbarmory/tamago/soc/nxp/enet"
	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
)

// NIC is an ENET MAC as a [board.NIC], polled (no interrupts yet).
//
// TamaGo v1.26.0's driver (soc/nxp/enet) sets the MAC and both descriptor
// rings up, and its Tx writes a frame into the next transmit descriptor. Two
// things in it are not what a board.NIC needs, and its API exposes no ring
// state to fix them from outside, so this type reads the rings TamaGo built
// (their addresses are in the MAC's ENETx_TDSR and ENETx_RDSR registers; the
// descriptors, in OCRAM, mapped strongly ordered):
//
//   - Tx never blocks and never fails: with every descriptor still waiting for
//     the MAC it overwrites the oldest one's length, status and data (its check
//     for that case, `uint16(bd.desc[3]<<8)&(1<<BD_TX_ST_R)`, shifts a byte and
//     is always false), so a frame is lost with no error. Transmit checks the
//     descriptor Tx will write next (its index is mirrored here: Tx advances it
//     once per frame of at most MTU octets, and this type is its only caller) and
//     returns board.ErrTxFull while the MAC still owns it.
//   - Rx allocates a fresh slice per frame (its length rounded up to 8). Receive
//     walks the receive ring itself instead (ENET.Rx is never called): it copies
//     the frame into the caller's buffer, gives the descriptor back to the MAC
//     (empty bit set, wrap bit kept) and kicks ENETx_RDAR, as Rx does, with no
//     allocation.
type NIC struct {
	eth  *enet.ENET
	ring int // descriptors per ring (eth.RingSize)
	rdar uintptr

	txMu   sync.Mutex
	txRing uintptr // first transmit descriptor
	txNext int     // the descriptor ENET.Tx writes next
	txBuf  []byte  // MTU + padding: what ENET.Tx is handed

	rxMu   sync.Mutex
	rxRing uintptr // first receive descriptor
	rxNext int
	// RxErrors counts frames the MAC flagged (CRC, overrun, truncation,
	// length) or that were too short or long, dropped like ENET.Rx drops them.
	RxErrors uint64
}

// Buffer descriptor layout (legacy FEC descriptors, little endian once
// ECR_DBSWP is set, as TamaGo sets it): length (16 bits), status (16 bits),
// buffer address (32 bits).
const (
	bdLen      = 8
	regRDSR    = 0x180 // enet.ENETx_RDSR
	regTDSR    = 0x184 // enet.ENETx_TDSR
	minFrame   = 42    // what ENET.Rx accepts (its minFrameSizeBytes)
	fcsLen     = 4
	copyAlign  = 8 // ENET.Rx's copy granularity from DMA memory
	rxErrorBit = 1<<enet.BD_RX_ST_CR | 1<<enet.BD_RX_ST_LG | 1<<enet.BD_RX_ST_NO | 1<<enet.BD_RX_ST_OV | 1<<enet.BD_RX_ST_TR
)

// word is the 32-bit word at physical address addr (flat mapping).
func word(addr uintptr) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(nil), addr)) }

// OpenENET initialises ENET1 or ENET2 with mac (nil: a random locally
// administered address) and starts its receive and transmit rings.
func OpenENET(index int, mac net.HardwareAddr) (*NIC, error) {
	var eth *enet.ENET
	switch index {
	case 1:
		eth = imx6ul.ENET1
	case 2:
		eth = imx6ul.ENET2
	}
	if eth == nil {
		return nil, fmt.Errorf("imx6: no ENET%d on this SoC (%s)", index, imx6ul.Model())
	}
	eth.MAC = mac
	eth.Init()
	eth.Start(false)
	base := uintptr(eth.Base)
	return &NIC{
		eth:    eth,
		ring:   eth.RingSize,
		rdar:   base + enet.ENETx_RDAR,
		txBuf:  make([]byte, 0, enet.MTU+copyAlign),
		txRing: uintptr(atomic.LoadUint32(word(base + regTDSR))),
		rxRing: uintptr(atomic.LoadUint32(word(base + regRDSR))),
	}, nil
}

// MAC implements [board.NIC].
func (n *NIC) MAC() net.HardwareAddr { return n.eth.MAC }

// Transmit implements [board.NIC]. When the descriptor the driver writes next
// is still the MAC's (the ring is full), the frame is not taken and the error
// wraps [board.ErrTxFull].
func (n *NIC) Transmit(frame []byte) error {
	if len(frame) > enet.MTU {
		return errors.New("imx6: frame longer than the ENET MTU")
	}
	n.txMu.Lock()
	defer n.txMu.Unlock()
	status := atomic.LoadUint32(word(n.txRing+uintptr(n.txNext*bdLen))) >> 16
	if status&(1<<enet.BD_TX_ST_R) != 0 {
		return fmt.Errorf("imx6: ENET transmit descriptor %d still the MAC's: %w", n.txNext, board.ErrTxFull)
	}
	// ENET.Tx pads the frame to a multiple of 8 octets with append, which would
	// write past the end of the caller's slice (or allocate): it gets a copy in a
	// buffer of this NIC's with room for the padding.
	b := append(n.txBuf[:0], frame...)
	n.eth.Tx(b)
	n.txNext = (n.txNext + 1) % n.ring
	return nil
}

// Receive implements [board.NIC]: the oldest frame the MAC has written is
// copied into buf (without its frame check sequence), and only then is its
// descriptor given back to the MAC.
func (n *NIC) Receive(buf []byte) (int, bool) {
	n.rxMu.Lock()
	defer n.rxMu.Unlock()
	d := n.rxRing + uintptr(n.rxNext*bdLen)
	w := atomic.LoadUint32(word(d))
	status, length := w>>16, int(w&0xffff)
	if status&(1<<enet.BD_RX_ST_E) != 0 {
		return 0, false
	}
	c := 0
	if status&(1<<enet.BD_ST_L) == 0 || status&rxErrorBit != 0 || length < minFrame || length > enet.MTU {
		n.RxErrors++
	} else {
		c = length - fcsLen
		// Copy in multiples of 8 octets from the DMA buffer when buf has room, as
		// ENET.Rx does; the frame's length is what is reported.
		m := min((c+copyAlign-1)&^(copyAlign-1), len(buf))
		data := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(atomic.LoadUint32(word(d+4))))), m)
		c = min(c, copy(buf, data))
	}
	atomic.StoreUint32(word(d), (status&(1<<enet.BD_ST_W)|1<<enet.BD_RX_ST_E)<<16)
	n.rxNext = (n.rxNext + 1) % n.ring
	atomic.StoreUint32(word(n.rdar), 1<<enet.RDAR_ACTIVE)
	return c, true
}

// Clock is the Arm generic timer: 62.5 MHz under QEMU, 8 MHz on an i.MX6
// as U-Boot leaves it.
type Clock struct{}

// Counter implements [board.Counter].
func (Clock) Counter() uint64 { return imx6ul.ARM.Counter() }

// Freq implements [board.Counter].
func (Clock) Freq() uint64 {
	if m := imx6ul.ARM.TimerMultiplier; m > 0 {
		return uint64(1e9/m + 0.5)
	}
	return 0
}

// Emulated reports whether the SoC is QEMU's model rather than silicon.
func Emulated() bool { return !imx6ul.Native }

// ExitFunc returns a function that stops the machine with a status the host
// sees, and routes the runtime's own exits (main returning, a fatal panic)
// through it; nil on silicon, where the runtime's exit (wait forever) stays.
func ExitFunc() func(int) {
	if imx6ul.Native {
		return nil
	}
	goos.Exit = func(code int32) { semihosting.Exit(int(code)) }
	return semihosting.Exit
}

var _ board.NIC = (*NIC)(nil)
var _ board.Counter = Clock{}
