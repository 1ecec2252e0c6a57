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

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/board/internal/semihosting"
	"github.com/usbarmory/tamago/soc/nxp/enet"
	"github.com/usbarmory/tamago/soc/nxp/imx6ul"
)

// NIC is an ENET MAC as a [board.NIC], polled (no interrupts yet).
type NIC struct {
	eth *enet.ENET
}

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
	return &NIC{eth: eth}, nil
}

// MAC implements [board.NIC].
func (n *NIC) MAC() net.HardwareAddr { return n.eth.MAC }

// Transmit implements [board.NIC].
func (n *NIC) Transmit(frame []byte) error {
	if len(frame) > enet.MTU {
		return errors.New("imx6: frame longer than the ENET MTU")
	}
	n.eth.Tx(frame)
	return nil
}

// Receive implements [board.NIC]. TamaGo's ENET driver hands each frame
// over in a fresh slice, its length rounded up to 8 octets; the tail is
// padding that IP ignores.
func (n *NIC) Receive(buf []byte) (int, bool) {
	f := n.eth.Rx()
	if f == nil {
		return 0, false
	}
	return copy(buf, f), true
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
