//go:build tamago && arm

// Package mx6ullevk registers the NXP MCIMX6ULL-EVK (and QEMU's
// mcimx6ul-evk model of it) as the image's board: TamaGo's board package
// for early boot and the console on UART1, ENET1 as the NIC (QEMU's first
// -net nic), the Arm generic timer as the clock, and semihosting exit under
// QEMU.
//
// Network defaults suit QEMU's user network (guest 10.0.0.1, host 10.0.0.2)
// and can be changed at link time, e.g.
//
//	-ldflags "-X github.com/musqratt/musqratt/board/mx6ullevk.Addrs=192.168.1.50/24"
package mx6ullevk

import (
	"fmt"
	"net"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/board/internal/imx6"
	_ "github.com/usbarmory/tamago/board/nxp/mx6ullevk"
)

// Link-time defaults (-ldflags -X). Addrs is a comma-separated list of
// prefixes; an empty MAC lets the driver pick a random local one.
var (
	MAC      = "1a:55:89:a2:69:41"
	Addrs    = "10.0.0.1/24"
	Gateway4 = "10.0.0.2"
	Gateway6 = ""
	ENET     = "1" // which MAC: "1" or "2"
)

func init() {
	n, err := board.ParseNet(MAC, Addrs, Gateway4, Gateway6)
	if err != nil {
		panic(fmt.Sprintf("mx6ullevk: link-time network defaults: %v", err))
	}
	index := 1
	if ENET == "2" {
		index = 2
	}
	board.Register(&board.Board{
		Name:  "mx6ullevk",
		Clock: imx6.Clock{},
		Net:   n,
		OpenNIC: func(mac net.HardwareAddr) (board.NIC, error) {
			return imx6.OpenENET(index, mac)
		},
		Console: imx6.ConsoleInput(1),
		Exit:    imx6.ExitFunc(),
	})
}
