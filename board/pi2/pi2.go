//go:build tamago && arm

// Package pi2 registers the Raspberry Pi 2 Model B as the image's board, without a
// network interface: TamaGo has no driver for its network hardware (see
// README.md). Its console is the BCM2835 mini UART; its clock the BCM2835
// system timer.
package pi2

import (
	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/board/internal/bcm2835"
	_ "github.com/usbarmory/tamago/board/raspberrypi/pi2"
)

func init() {
	board.Register(&board.Board{
		Name:  "pi2",
		Clock: bcm2835.Clock{},
		// OpenNIC stays nil: Board.Open reports board.ErrNoNIC, never a
		// pretend interface.
	})
}
