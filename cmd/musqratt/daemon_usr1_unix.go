//go:build unix

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/musqratt/musqratt/kernel"
)

// dumpOnSignal writes the metrics dump (the serial console's text format) to w on each
// SIGUSR1, as `kill -USR1 $(pidof musqratt)` asks.
func dumpOnSignal(ctx context.Context, m *kernel.Metrics, w io.Writer, logger *slog.Logger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				if err := m.WriteText(w); err != nil {
					logger.Warn("metrics dump failed", "err", err)
				}
			}
		}
	}()
}
