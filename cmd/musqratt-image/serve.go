//go:build tamago

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/musqratt/musqratt/board"
	floor "github.com/musqratt/musqratt/broker/relay"
	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/latency"
	"github.com/musqratt/musqratt/net/netstack"
	"github.com/musqratt/musqratt/net/serve"
)

// DumpEvery is how often the metrics dump is printed on the console (link-time:
// -X main.DumpEvery=10s; "0" for only on the stats command).
var DumpEvery = "60s"

// serveBroker runs the broker on bind with cfg (the embedded default and ExtraConfig),
// logging and dumping metrics to the console, until the Bind fails.
func serveBroker(ctx context.Context, b *board.Board, st *netstack.Stack, cfg kernel.Config, bind *netstack.UDPBind, console io.Writer) error {
	every, err := time.ParseDuration(DumpEvery)
	if err != nil {
		return fmt.Errorf("DumpEvery %q: %v", DumpEvery, err)
	}
	// No broadcast unless ExtraConfig asks (the default is "broadcast none": the
	// board's network is not known to allow it).
	cfg.Board = b.Name
	cfg.Version = Version
	cfg.Clock = latency.Func(b.Clock.Counter, b.Clock.Freq())
	cfg.ExtraMetrics = linkMetrics(st, bind)
	cfg.OnServing = func(m *kernel.Metrics) {
		go kernel.Console(ctx, m, b.Console, console, every)
	}
	logger := slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return kernel.RunBinds(ctx, cfg, []serve.Bind{bind}, logger)
}

// serveRelay runs the image's floor: broker/relay's engine in the same loop, over the
// same Bind, stack and NIC as the broker, with no broker.
func serveRelay(ctx context.Context, b *board.Board, bind serve.Bind, console io.Writer) error {
	logger := slog.New(slog.NewTextHandler(console, nil))
	srv := serve.NewBind(&floor.Relay{}, serve.Options{
		Clock:  latency.Func(b.Clock.Counter, b.Clock.Freq()),
		Logger: logger,
	}, bind)
	return srv.Run(ctx)
}

// linkMetrics renders the link endpoint's counters of every interface: what the NIC
// took, and what it could not (never a silent loss below the loop).
func linkMetrics(st *netstack.Stack, bind *netstack.UDPBind) func(dst []latency.Metric) []latency.Metric {
	return func(dst []latency.Metric) []latency.Metric {
		bs := bind.Stats()
		dst = append(dst,
			latency.Metric{Name: "udp_rx_queue_full_total", Help: "Datagrams for the broker's port dropped because its receive queue was full.", Kind: latency.Counter, Value: float64(bs.RxQueueFull)},
			latency.Metric{Name: "udp_malformed_total", Help: "Datagrams for the broker's port dropped for a bad UDP length or checksum.", Kind: latency.Counter, Value: float64(bs.Malformed)})
		for _, s := range st.InterfaceStats() {
			nic := [2]string{"nic", s.MAC.String()}
			c := func(name, help string, v uint64, labels ...[2]string) {
				dst = append(dst, latency.Metric{Name: name, Help: help, Kind: latency.Counter, Value: float64(v), Labels: append(labels, nic)})
			}
			c("link_tx_frames_total", "Frames the NIC took.", s.TxFrames)
			c("link_tx_busy_total", "Transmit attempts the NIC answered with a full ring (retried).", s.TxBusy)
			c("link_tx_dropped_total", "Frames that did not leave, by reason.", s.TxQueueFull, [2]string{"reason", "tx_queue_full"})
			c("link_tx_dropped_total", "Frames that did not leave, by reason.", s.TxNICErrors, [2]string{"reason", "nic_error"})
			c("link_rx_frames_total", "Frames taken from the NIC.", s.RxFrames)
			c("link_rx_dropped_total", "Frames taken from the NIC and dropped (runts).", s.RxDropped)
		}
		return dst
	}
}

// Version is the image's version (link-time: -X main.Version=...).
var Version = "dev"
