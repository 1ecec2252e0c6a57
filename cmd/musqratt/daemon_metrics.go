package main

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/musqratt/musqratt/kernel"
)

// watchMetrics sets cfg.OnServing to start what reads the broker's numbers while it
// serves: the text dump on SIGUSR1 (on Unix) and the HTTP status server when
// status_listen is set (status, already bound). Both stop with ctx.
func watchMetrics(ctx context.Context, cfg *kernel.Config, status net.Listener, logger *slog.Logger, dump io.Writer) {
	next := cfg.OnServing
	cfg.OnServing = func(m *kernel.Metrics) {
		dumpOnSignal(ctx, m, dump, logger)
		if status != nil {
			startStatus(ctx, status, m, logger)
		}
		if next != nil {
			next(m)
		}
	}
}
