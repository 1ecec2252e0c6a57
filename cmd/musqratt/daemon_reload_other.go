//go:build !unix

package main

import (
	"context"
	"log/slog"

	"github.com/musqratt/musqratt/kernel"
)

// reloadOnSignal: no SIGHUP here; a configuration change needs a restart.
func reloadOnSignal(context.Context, func() (kernel.Config, error), string, *slog.Logger) <-chan kernel.Config {
	return nil
}
