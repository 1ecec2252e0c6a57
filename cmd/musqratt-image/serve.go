//go:build tamago

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/musqratt/musqratt/board"
	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/latency"
)

// DumpEvery is how often the metrics dump is printed on the console (link-time:
// -X main.DumpEvery=10s; "0" for only on the stats command).
var DumpEvery = "60s"

// serve runs the broker on conns with cfg (the embedded default and ExtraConfig),
// logging and dumping metrics to the console, until a connection fails.
func serve(ctx context.Context, b *board.Board, cfg kernel.Config, conns []net.PacketConn, console io.Writer) error {
	every, err := time.ParseDuration(DumpEvery)
	if err != nil {
		return fmt.Errorf("DumpEvery %q: %v", DumpEvery, err)
	}
	// No broadcast unless ExtraConfig asks (the default is "broadcast none": the
	// board's network is not known to allow it).
	cfg.Board = b.Name
	cfg.Version = Version
	cfg.Clock = latency.Func(b.Clock.Counter, b.Clock.Freq())
	cfg.OnServing = func(m *kernel.Metrics) {
		go kernel.Console(ctx, m, b.Console, console, every)
	}
	logger := slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return kernel.RunConns(ctx, cfg, conns, logger)
}

// Version is the image's version (link-time: -X main.Version=...).
var Version = "dev"
