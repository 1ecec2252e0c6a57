package main

import (
	"context"
	"log/slog"

	"github.com/musqratt/musqratt/kernel"
)

// startStatus serves the HTTP status server on addr until ctx ends.
func startStatus(ctx context.Context, addr string, m *kernel.Metrics, logger *slog.Logger) {
	logger.Warn("status_listen: the HTTP status server is not in this build", "addr", addr)
}
