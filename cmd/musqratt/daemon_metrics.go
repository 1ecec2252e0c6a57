package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/musqratt/musqratt/kernel"
)

// watchMetrics sets cfg.OnServing to start what reads the broker's numbers while it
// serves: the text dump on SIGUSR1 (on Unix) and the HTTP status server when
// status_listen is set. Both stop with ctx.
func watchMetrics(ctx context.Context, cfg *kernel.Config, logger *slog.Logger, dump io.Writer) {
	next := cfg.OnServing
	cfg.OnServing = func(m *kernel.Metrics) {
		dumpOnSignal(ctx, m, dump, logger)
		if cfg.StatusListen != "" {
			startStatus(ctx, cfg.StatusListen, m, logger)
		}
		if next != nil {
			next(m)
		}
	}
}
