// Package status is the hosted broker's HTTP surface, in one place so that nothing
// else in the broker needs net/http: /metrics (Prometheus text), /status.json (the
// same numbers as JSON), a live status page at / that draws them, and pprof under
// /debug/pprof/. It reads a Source (kernel.Metrics is one) and never touches the
// engine.
package status

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/musqratt/musqratt/latency"
)

// Source gives the numbers to serve. Its methods are called from HTTP handler
// goroutines, so they must be safe for concurrent use.
type Source interface {
	Title() string
	AppendMetrics([]latency.Metric) []latency.Metric
	AppendHistograms([]latency.NamedHistogram) []latency.NamedHistogram
}

//go:embed page.html
var page []byte

// Handler serves the status endpoints for src.
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := latency.WritePrometheus(w, "musqratt", src.AppendMetrics(nil), src.AppendHistograms(nil)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Snapshot(src, time.Now()))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	// pprof on this mux, not http.DefaultServeMux: nothing else gets it by accident.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Status is the JSON form of a Source's numbers.
type Status struct {
	Title      string      `json:"title"`
	TimeMs     int64       `json:"time_ms"`
	Metrics    []Metric    `json:"metrics"`
	Histograms []Histogram `json:"histograms"`
}

// Metric is one counter or gauge.
type Metric struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Histogram is a latency histogram's summary, in microseconds.
type Histogram struct {
	Name  string  `json:"name"`
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// Snapshot reads src once.
func Snapshot(src Source, now time.Time) Status {
	st := Status{Title: src.Title(), TimeMs: now.UnixMilli()}
	for _, m := range src.AppendMetrics(nil) {
		jm := Metric{Name: m.Name, Kind: m.Kind.String(), Value: m.Value}
		if len(m.Labels) > 0 {
			jm.Labels = map[string]string{}
			for _, l := range m.Labels {
				jm.Labels[l[0]] = l[1]
			}
		}
		st.Metrics = append(st.Metrics, jm)
	}
	for _, h := range src.AppendHistograms(nil) {
		s := &h.Snap
		us := func(ns uint64) float64 { return float64(ns) / 1e3 }
		st.Histograms = append(st.Histograms, Histogram{Name: h.Name, Count: s.Count(),
			P50: us(s.Quantile(0.5)), P90: us(s.Quantile(0.9)), P99: us(s.Quantile(0.99)), P999: us(s.Quantile(0.999)), Max: us(s.Max())})
	}
	return st
}

// Serve serves Handler(src) on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, src Source, logger *slog.Logger) error {
	srv := &http.Server{Handler: Handler(src), ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if logger != nil {
		logger.Error("status server stopped", "err", err)
	}
	return err
}
