//go:build tamago

// Command musqratt-image is the bare-metal MusQraTT image: one board
// (chosen by build tag), its NIC under a gVisor stack that the standard
// library's net package is routed to, and a UDP socket on port 1883 handed to
// the server. Build it with the TamaGo toolchain, e.g.
//
//	GOOS=tamago GOARCH=arm GOARM=7 $(go tool -n tamago) build -tags mx6ullevk \
//	    -ldflags "-T 0x80010000 -R 0x1000" -o musqratt-mx6ullevk.elf ./cmd/musqratt-image
//
// (see docs/bare-metal.md). It runs the broker (kernel.RunBinds) with the embedded
// default configuration plus the link-time ExtraConfig lines, prints
// "musqratt: ready" on the console once the socket is bound (the qemu package
// waits for that line), and keeps the serial console: a periodic metrics dump
// and the commands of kernel.ConsoleHelp.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/net/netstack"
)

// Port is the UDP port served (link-time: -X main.Port=...).
var Port = "1883"

// ExtraConfig is configuration added to the embedded default at link time: lines
// of musqratt.conf (docs/config.md) separated by ";", e.g.
//
//	-X 'main.ExtraConfig=bridge address tcp://10.0.0.2:1883;bridge out sensors/# 1 edge-1/'
//
// parsed by the kernel's own parser at boot; a bad line stops the boot with its
// number and what is wrong ("main.ExtraConfig:2: ..."). The image serves UDP Port
// on every address whatever listen says, and keeps state in memory.
var ExtraConfig = ""

// ReadyLine is printed on the console once the server's socket is bound.
const ReadyLine = "musqratt: ready"

func main() {
	err := boot(context.Background())
	fmt.Fprintf(os.Stdout, "musqratt: stopped: %v\n", err)
	exit(1)
}

func boot(ctx context.Context) error {
	b, ok := board.Current()
	if !ok {
		return fmt.Errorf("no board registered (build with a board tag)")
	}
	var port uint16
	if _, err := fmt.Sscan(Port, &port); err != nil {
		return fmt.Errorf("port %q: %v", Port, err)
	}
	if Mode != "broker" && Mode != "relay" {
		return fmt.Errorf("main.Mode %q: want broker or relay", Mode)
	}
	var relayPort uint16
	if RelayPort != "" {
		if _, err := fmt.Sscan(RelayPort, &relayPort); err != nil || relayPort == 0 || relayPort == port {
			return fmt.Errorf("main.RelayPort %q: want a UDP port other than main.Port", RelayPort)
		}
	}
	cfg, err := extraConfig(ExtraConfig)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "musqratt: board %s, %d Hz clock\n", b.Name, b.Clock.Freq())

	nic, err := b.Open()
	if err != nil {
		return err
	}
	// TCP for the upstream bridge (and anything else that dials or listens); the
	// standard library's net reaches the stack through SocketFunc from here on.
	st := netstack.New(netstack.Config{TCP: true})
	net.SocketFunc = st.Socket
	err = st.AddInterface(ctx, netstack.Interface{
		NIC:      nic,
		Addrs:    b.Net.Addrs,
		Gateway4: b.Net.Gateway4,
		Gateway6: b.Net.Gateway6,
	})
	if err != nil {
		return err
	}
	// The broker's socket is gVisor's UDP endpoint itself (net/netstack's Bind:
	// batches into the loop's buffers, no allocation per datagram), dual stack: IPv4
	// and, when the board has an IPv6 address, IPv6 on the one port.
	bind, err := st.ListenBind(port)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "musqratt: %v on %v, UDP port %d\n", nic.MAC(), b.Net.Addrs, port)
	if Mode == "relay" {
		fmt.Fprintln(os.Stdout, "musqratt: relay mode (the image's floor: no broker)")
		fmt.Fprintln(os.Stdout, ReadyLine)
		return serveRelay(ctx, b, bind, os.Stdout)
	}
	if relayPort != 0 {
		rb, err := st.ListenBind(relayPort)
		if err != nil {
			return fmt.Errorf("relay port: %w", err)
		}
		fmt.Fprintf(os.Stdout, "musqratt: the floor relay on UDP port %d\n", relayPort)
		go func() {
			err := serveRelay(ctx, b, rb, os.Stdout)
			fmt.Fprintf(os.Stdout, "musqratt: relay stopped: %v\n", err)
		}()
	}
	if cfg.Bridge.Enabled() {
		fmt.Fprintf(os.Stdout, "musqratt: bridge to %s\n", cfg.Bridge.Address)
	}
	fmt.Fprintln(os.Stdout, ReadyLine)
	return serveBroker(ctx, b, st, cfg, bind, os.Stdout)
}

// Mode is "broker" (the default) or "relay" (link-time: -X main.Mode=relay): the
// image's floor, broker/relay's engine on the same stack, NIC and loop, so that
// `musqratt bench --floor` against it gives broker/floor ratios under the same
// emulation.
var Mode = "broker"

// RelayPort, if set (link-time: -X main.RelayPort=1884), serves the floor relay on
// that port beside the broker: the same stack, NIC and loop code in the same guest,
// so one emulated machine gives both paths of `musqratt bench --floor` (make
// image-bench), and they share the emulation's costs.
var RelayPort = ""

// extraConfig is the embedded default configuration with the ";"-separated lines
// of s applied, by the kernel's parser (an empty file is the default).
func extraConfig(s string) (kernel.Config, error) {
	return kernel.ParseConfig("main.ExtraConfig", strings.NewReader(strings.ReplaceAll(s, ";", "\n")))
}

func exit(code int) {
	if b, ok := board.Current(); ok && b.Exit != nil {
		b.Exit(code)
	}
	os.Exit(code)
}
