//go:build tamago

// Command musqratt-image is the bare-metal MusQraTT image: one board
// (chosen by build tag), its NIC under a gVisor stack, and a UDP socket on
// port 1883 handed to the server. Build it with the TamaGo toolchain, e.g.
//
//	GOOS=tamago GOARCH=arm GOARM=7 $(go tool -n tamago) build -tags mx6ullevk \
//	    -ldflags "-T 0x80010000 -R 0x1000" -o musqratt-mx6ullevk.elf ./cmd/musqratt-image
//
// (see docs/bare-metal.md). It runs the broker (kernel.Run) with the embedded
// default configuration, prints "musqratt: ready" on the console once the socket
// is bound (the qemu package waits for that line), and keeps the serial console:
// a periodic metrics dump and the commands of kernel.ConsoleHelp.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/net/netstack"
)

// Port is the UDP port served (link-time: -X main.Port=...).
var Port = "1883"

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
	fmt.Fprintf(os.Stdout, "musqratt: board %s, %d Hz clock\n", b.Name, b.Clock.Freq())

	nic, err := b.Open()
	if err != nil {
		return err
	}
	st := netstack.New(netstack.Config{})
	err = st.AddInterface(ctx, netstack.Interface{
		NIC:      nic,
		Addrs:    b.Net.Addrs,
		Gateway4: b.Net.Gateway4,
		Gateway6: b.Net.Gateway6,
	})
	if err != nil {
		return err
	}
	conn, err := st.ListenUDP(port)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "musqratt: %v on %v, UDP port %d\n", nic.MAC(), b.Net.Addrs, port)
	fmt.Fprintln(os.Stdout, ReadyLine)
	return serve(ctx, b, conn, os.Stdout)
}

func exit(code int) {
	if b, ok := board.Current(); ok && b.Exit != nil {
		b.Exit(code)
	}
	os.Exit(code)
}
