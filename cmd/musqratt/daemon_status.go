package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/net/status"
)

// listenStatus binds the HTTP status server's address (status_listen). The server has
// no authentication and includes pprof: on an address other than loopback that is
// worth a warning.
func listenStatus(addr string, logger *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		logger.Warn("status_listen is not a loopback address: /metrics, the status page and pprof (/debug/pprof/) are served without authentication to whoever reaches it",
			"addr", ln.Addr().String())
	}
	return ln, nil
}

// startStatus serves the HTTP status server (net/status) on ln until ctx ends.
func startStatus(ctx context.Context, ln net.Listener, m *kernel.Metrics, logger *slog.Logger) {
	logger.Info("status server", "url", "http://"+ln.Addr().String()+"/")
	go status.Serve(ctx, ln, m, logger)
}
