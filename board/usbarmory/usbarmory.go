//go:build tamago && arm

// Package usbarmory registers the USB armory Mk II LAN (UA-MKII-LAN) as the
// image's board: TamaGo's usbarmory/mk2 package for early boot and the
// console on UART2, ENET2 (its DP83825I PHY) as the NIC on silicon and ENET1
// under QEMU's mcimx6ul-evk model (QEMU's first -net nic), the Arm generic
// timer as the clock, and semihosting exit under QEMU.
//
// The plain Mk II has no Ethernet MAC wired: on it OpenNIC's ENET2 has no
// PHY and no link. Its USB Ethernet gadget (CDC-ECM) is not wired up here.
//
// Network defaults can be changed at link time, e.g.
//
//	-ldflags "-X github.com/musqratt/musqratt/board/usbarmory.Addrs=10.0.0.1/24"
package usbarmory

import (
	"fmt"
	"net"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/board/internal/imx6"
	_ "github.com/usbarmory/tamago/board/usbarmory/mk2"
)

// Link-time defaults (-ldflags -X). Addrs is a comma-separated list of
// prefixes; an empty MAC lets the driver pick a random local one.
var (
	MAC      = "1a:55:89:a2:69:42"
	Addrs    = "10.0.0.1/24"
	Gateway4 = "10.0.0.2"
	Gateway6 = ""
)

func init() {
	n, err := board.ParseNet(MAC, Addrs, Gateway4, Gateway6)
	if err != nil {
		panic(fmt.Sprintf("usbarmory: link-time network defaults: %v", err))
	}
	index := 2
	if imx6.Emulated() {
		index = 1
	}
	board.Register(&board.Board{
		Name:  "usbarmory",
		Clock: imx6.Clock{},
		Net:   n,
		OpenNIC: func(mac net.HardwareAddr) (board.NIC, error) {
			return imx6.OpenENET(index, mac)
		},
		Console: imx6.ConsoleInput(2), // the Mk II console is UART2
		Exit:    imx6.ExitFunc(),
	})
}
