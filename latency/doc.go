// Package latency measures how long datagrams spend in the broker and renders what
// it measured, and any other numbers a component hands it, for people and for
// Prometheus.
//
// It owns four things:
//
//   - Clocks. A Clock is a tick counter with a frequency: Monotonic (the runtime's
//     monotonic clock, the Default everywhere), the x86 TSC (TSC, CalibratedTSC),
//     the ARM generic timer (GenericTimer), whichever of those the CPU has
//     (CPUCounter), and any counter a board supplies (Func). Nanos converts ticks.
//   - Histogram: a fixed-size (about 10 KB), log-linear histogram of nanoseconds,
//     exact to 63 ns and within 1/32 above that up to MaxTrackable (about 73
//     minutes), whose Record is lock-free and allocation-free, for the hot path.
//     Snapshots are plain values to keep, merge and query (Count, Min, Max, Mean,
//     Quantile).
//   - Tracer: one histogram per interval between the Stages a datagram passes
//     (Received, Decoded, Matched, Queued, Sent) and one end to end, fed with
//     clock stamps or with nanoseconds.
//   - Renderings: WriteText for the serial console and `musqratt stats`,
//     WritePrometheus for /metrics. Both take the same generic Metrics and
//     NamedHistograms, so any component can report through them without this
//     package knowing it.
//
// It does not own where numbers come from or go: it never reads broker.Stats
// (the caller turns stats into Metrics), never stamps a datagram (net/serve does,
// with a Clock from here), never serves HTTP (net/status) and never knows a
// board's counter (board/<name> passes one to Func). It imports only the standard
// library and builds for GOOS=tamago: the CPU counters are a few lines of assembly
// per architecture, with a fallback that reports ErrNoCounter elsewhere.
//
// # Why these choices
//
// A clock is a counter, not time.Time, because stamps travel in a uint64
// (Datagram.Mark) and the cheapest clock on a board is a CPU counter read in a few
// cycles; converting to nanoseconds happens once, when recording. The histogram is
// HdrHistogram's idea reduced to what a broker needs: fixed buckets (no
// allocation, no resizing, no configuration), atomic counters (one writer records
// while the status page reads, without a lock), and quantiles reported as the
// upper bound of their bucket, so a reported p99 is never better than the truth.
//
// Prometheus gets each histogram as a summary, not a histogram: its 1,217 buckets
// are too many to expose, coarser ones would throw the precision away, and one
// edge broker has nothing to aggregate quantiles with.
//
// # Text format
//
// WriteText's output is stable; scripts and tests may parse it. Every line ends in
// a newline and is one of:
//
//   - the title line "== TITLE ==", first, only if the title is not empty (a
//     newline in it is written as \n, backslash as \\);
//   - one line per Metric, in the order given: its name, then its labels as
//     {name="value",...} (escaped as in Prometheus, so a metric is always one
//     line), left-aligned and padded to the name column, two spaces, and the value
//     right-aligned: integers up to 2^53 without a fraction, other values in Go's
//     shortest %g form, NaN, +Inf and -Inf as spelled here;
//   - an empty line, only between metrics and histograms when there are both;
//   - the histogram header "histogram (µs)" and the column names count, p50,
//     p90, p99, p99.9 and max, then one line per NamedHistogram: its name, the
//     count, and the quantiles and maximum in microseconds with one decimal
//     (rounded half up), or "-" for an empty histogram. Quantiles are
//     HistSnapshot.Quantile's.
//
// Names share one left-aligned column (at least as wide as the histogram header
// when there are histograms); every other column is right-aligned and as wide as
// its widest cell; columns are separated by two spaces. Widths count runes, not
// bytes. For example:
//
//	== musqratt ==
//	sessions                              3
//	datagrams_in_total                 1042
//	dropped_total{reason="malformed"}     2
//
//	histogram (µs)                     count   p50    p90    p99  p99.9    max
//	latency_end_to_end                  1000  45.1  102.4  118.8  119.8  119.8
//	latency_received_decoded               0     -      -      -      -      -
//
// # Prometheus format
//
// WritePrometheus writes the text exposition format 0.0.4: a family per metric
// name with # HELP and # TYPE, label values escaped, and each histogram as a
// summary in seconds (quantiles 0.5, 0.9, 0.99 and 0.999, _sum and _count). It
// validates names first and writes nothing on error.
package latency
