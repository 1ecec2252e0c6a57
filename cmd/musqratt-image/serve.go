//go:build tamago

package main

import (
	"context"
	"io"
	"net"
)

// serve runs the server on conn until it fails. This is the one call to
// swap for the broker (kernel.Run(ctx, conn, console)); until then it echoes
// every datagram back to its sender.
func serve(ctx context.Context, conn net.PacketConn, console io.Writer) error {
	_ = console
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(buf[:n], from); err != nil {
			return err
		}
	}
	return ctx.Err()
}
