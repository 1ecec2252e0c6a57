package qemu

import (
	"fmt"
	"os/exec"
)

// Machine is one board as QEMU emulates it and as the image is built for it.
type Machine struct {
	Board  string // board build tag and package name under board/
	GOARCH string
	GOARM  string
	// TextStart and RAMStart are the TamaGo linker's -T and -R values.
	TextStart, RAMStart string
	QEMU                string                                 // emulator binary
	Args                func(hostPort, guestPort int) []string // everything but -kernel
	// ExitStatus maps the guest's exit code to QEMU's process status.
	ExitStatus func(code int) int
}

// userNet is QEMU's user network as the boards' defaults expect it: guest
// 10.0.0.1, host 10.0.0.2. restrict=on would break forwarded UDP replies.
func userNet(hostPort, guestPort int) string {
	return fmt.Sprintf("user,id=net0,net=10.0.0.0/24,host=10.0.0.2,hostfwd=udp:127.0.0.1:%d-10.0.0.1:%d",
		hostPort, guestPort)
}

// MX6ULLEVK is the NXP MCIMX6ULL-EVK as QEMU's mcimx6ul-evk: UART1 on
// stdio, ENET1 on the user network, semihosting for the exit status.
var MX6ULLEVK = Machine{
	Board:     "mx6ullevk",
	GOARCH:    "arm",
	GOARM:     "7",
	TextStart: "0x80010000", // imx6ul RAM start (MMDC) + 0x10000
	RAMStart:  "0x1000",
	QEMU:      "qemu-system-arm",
	Args: func(hostPort, guestPort int) []string {
		return []string{
			"-machine", "mcimx6ul-evk", "-cpu", "cortex-a7", "-m", "512M",
			"-nographic", "-monitor", "none", "-semihosting",
			"-serial", "stdio", "-serial", "null",
			"-net", "nic,model=imx.enet,netdev=net0",
			"-netdev", userNet(hostPort, guestPort),
		}
	},
	ExitStatus: func(code int) int { return code },
}

// USBArmory is the USB armory Mk II LAN under the same QEMU model (its
// console is UART2; QEMU has no model of its own).
var USBArmory = Machine{
	Board:     "usbarmory",
	GOARCH:    "arm",
	GOARM:     "7",
	TextStart: "0x80010000",
	RAMStart:  "0x1000",
	QEMU:      "qemu-system-arm",
	Args: func(hostPort, guestPort int) []string {
		return []string{
			"-machine", "mcimx6ul-evk", "-cpu", "cortex-a7", "-m", "512M",
			"-nographic", "-monitor", "none", "-semihosting",
			"-serial", "null", "-serial", "stdio",
			"-net", "nic,model=imx.enet,netdev=net0",
			"-netdev", userNet(hostPort, guestPort),
		}
	},
	ExitStatus: func(code int) int { return code },
}

// Microvm is QEMU's amd64 microvm under TCG (KVM here cannot run Go's first
// instruction; see docs/bare-metal.md), with the PIT on (board/microvm
// calibrates the TSC against it), virtio-net over MMIO, isa-debug-exit at
// port 0xf4 for the exit status.
var Microvm = Machine{
	Board:     "microvm",
	GOARCH:    "amd64",
	TextStart: "0x10010000", // amd64 RAM start + 0x10000
	RAMStart:  "0x1000",
	QEMU:      "qemu-system-x86_64",
	Args: func(hostPort, guestPort int) []string {
		return []string{
			"-machine", "microvm,x-option-roms=on,pic=off,rtc=on",
			"-accel", "tcg", "-cpu", "max", "-m", "1G", "-no-reboot",
			"-global", "virtio-mmio.force-legacy=false",
			"-nographic", "-monitor", "none", "-serial", "stdio",
			"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
			"-device", "virtio-net-device,netdev=net0",
			"-netdev", userNet(hostPort, guestPort),
		}
	},
	// isa-debug-exit: QEMU exits with (value << 1) | 1.
	ExitStatus: func(code int) int { return code<<1 | 1 },
}

// Available reports whether m's emulator is installed, or why not.
func Available(m Machine) error {
	if _, err := exec.LookPath(m.QEMU); err != nil {
		return fmt.Errorf("%s not installed (Debian: apt-get install %s): %w", m.QEMU, debPackage(m.QEMU), err)
	}
	return nil
}

func debPackage(bin string) string {
	if bin == "qemu-system-x86_64" {
		return "qemu-system-x86"
	}
	return bin
}
