package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/net/status"
)

// startStatus serves the HTTP status server (net/status) on addr until ctx ends. A
// failure to listen is logged, not fatal: MQTT-SN service matters more than its page.
func startStatus(ctx context.Context, addr string, m *kernel.Metrics, logger *slog.Logger) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("status_listen: cannot listen; no status server", "addr", addr, "err", err)
		return
	}
	logger.Info("status server", "url", "http://"+ln.Addr().String()+"/")
	go status.Serve(ctx, ln, m, logger)
}
