//go:build unix

package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/musqratt/musqratt/kernel"
)

// reloadOnSignal reads the configuration again with load on each SIGHUP, as Mosquitto
// does (`kill -HUP $(pidof musqratt)`, systemd's ExecReload), and sends it on the
// channel it returns for kernel.Config.Reload. A file that does not load is logged
// with its file:line and the configuration in force is kept.
func reloadOnSignal(ctx context.Context, load func() (kernel.Config, error), file string, logger *slog.Logger) <-chan kernel.Config {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	ch := make(chan kernel.Config)
	if file == "" {
		file = "the built-in default"
	}
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
			}
			logger.Info("SIGHUP: reloading the configuration", "config", file)
			cfg, err := load()
			if err != nil {
				logger.Error("configuration reload failed; keeping the current configuration", "err", err)
				continue
			}
			select {
			case ch <- cfg:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
