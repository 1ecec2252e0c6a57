//go:build tamago && amd64

// Package microvm registers QEMU's amd64 microvm as the image's board, with
// early boot of its own instead of TamaGo's board/qemu/microvm: that package
// panics in kvm/pvclock ("could not set system timer") unless the CPU reports
// an invariant TSC or KVM's clock, which TCG does not. Here the TSC is
// calibrated against the PIT, the console is COM1, the NIC is virtio-net over
// MMIO (nic.go) and exit goes through QEMU's isa-debug-exit.
//
// QEMU needs (see package qemu, Microvm): -machine microvm with the PIT on,
// -m 1G or more, -device isa-debug-exit,iobase=0xf4,iosize=0x04 and
// -device virtio-net-device. Network defaults suit QEMU's user network and
// can be changed at link time, e.g.
//
//	-ldflags "-X github.com/musqratt/musqratt/board/microvm.Addrs=10.0.0.1/24"
package microvm

import (
	"fmt"
	"net"
	"runtime/goos"
	_ "unsafe"

	"github.com/musqratt/musqratt/board"
	"github.com/usbarmory/tamago/amd64"
	"github.com/usbarmory/tamago/dma"
	"github.com/usbarmory/tamago/soc/intel/uart"
)

// Link-time defaults (-ldflags -X).
var (
	MAC      = "1a:55:89:a2:69:43"
	Addrs    = "10.0.0.1/24"
	Gateway4 = "10.0.0.2"
	Gateway6 = ""
)

// Memory: the Go runtime owns [0x10000000, 0x30000000) (TamaGo's amd64
// RAM start and ramSize below); virtio rings live in the DMA region after it.
const (
	dmaStart = 0x30000000
	dmaSize  = 0x01000000 // 16 MB
	com1     = 0x3f8

	// isa-debug-exit's I/O port (QEMU exits with status value<<1 | 1).
	debugExitPort = 0xf4
)

//go:linkname ramSize runtime/goos.RamSize
var ramSize uint64 = 0x20000000 // 512 MB

var (
	cpu = &amd64.CPU{TimerMultiplier: 1} // required before Init
	com = &uart.UART{Index: 1, Base: com1}

	// tscHz is the calibrated TSC frequency; 0 until hwinit.
	tscHz uint64
)

//go:linkname nanotime runtime/goos.Nanotime
func nanotime() int64 { return cpu.GetTime() }

//go:linkname printk runtime/goos.Printk
func printk(c byte) { com.Tx(c) }

// hwinit runs early in runtime setup: CPU features and timers, the console,
// then the TSC calibration the runtime's clock depends on.
//
//go:linkname hwinit runtime/goos.Hwinit1
func hwinit() {
	cpu.Init()
	com.Init()
	tscHz = calibrateTSC()
	if tscHz == 0 {
		print("microvm: no PIT to calibrate the TSC against; time will be wrong\n")
		tscHz = 1e9
	}
	cpu.TimerMultiplier = 1e9 / float64(tscHz)
	cpu.SetTime(0)
}

// Clock is the TSC at its calibrated frequency.
type Clock struct{}

// Counter implements [board.Counter].
func (Clock) Counter() uint64 { return cpu.Counter() }

// Freq implements [board.Counter].
func (Clock) Freq() uint64 { return tscHz }

func exit(code int) {
	outl(debugExitPort, uint32(code))
	for {
		amd64.Fault() // no isa-debug-exit: a triple fault ends a microvm
	}
}

func init() {
	cpu.EnableExceptions()
	dma.Init(dmaStart, dmaSize)
	goos.Exit = func(code int32) { exit(int(code)) }

	n, err := board.ParseNet(MAC, Addrs, Gateway4, Gateway6)
	if err != nil {
		panic(fmt.Sprintf("microvm: link-time network defaults: %v", err))
	}
	board.Register(&board.Board{
		Name:  "microvm",
		Clock: Clock{},
		Net:   n,
		OpenNIC: func(mac net.HardwareAddr) (board.NIC, error) {
			return openVirtioNet(mac)
		},
		Exit: exit,
	})
}
