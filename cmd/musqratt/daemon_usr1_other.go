//go:build !unix

package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/musqratt/musqratt/kernel"
)

// dumpOnSignal: no SIGUSR1 here; `musqratt stats` and the status server still work.
func dumpOnSignal(context.Context, *kernel.Metrics, io.Writer, *slog.Logger) {}
