package latency

import (
	"fmt"
	"math"
	"strconv"
)

// Kind says how a Metric's value behaves, which decides its Prometheus TYPE.
type Kind uint8

// Gauge is the zero Kind on purpose: a metric whose author forgot to choose is
// exposed as a gauge, which promises nothing, rather than as a counter, whose
// promise (it never decreases) rate() relies on.
const (
	Gauge   Kind = iota // a value that goes up and down: sessions, queue depth
	Counter             // a count that only grows (until restart): datagrams in
)

// String returns the Prometheus type name, "gauge" or "counter".
func (k Kind) String() string {
	switch k {
	case Gauge:
		return "gauge"
	case Counter:
		return "counter"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Metric is one number to render, from whichever component owns it: the broker's
// Stats, the driver's counters, the board. Metrics with the same Name but
// different Labels form one family; its Help and Kind are taken from the first.
type Metric struct {
	Name   string      // [a-zA-Z_:][a-zA-Z0-9_:]*, without the prefix WritePrometheus adds
	Help   string      // one line; may be empty
	Kind   Kind        // zero: Gauge
	Labels [][2]string // optional name, value pairs; names [a-zA-Z_][a-zA-Z0-9_]*
	Value  float64
}

// NamedHistogram is a histogram snapshot of durations in nanoseconds, with the
// name and help to render it under. Name carries no unit: WriteText shows
// microseconds, WritePrometheus seconds (and appends "_seconds").
type NamedHistogram struct {
	Name, Help string
	Snap       HistSnapshot
}

// quantiles are the ones both renderings show, with their column and label names.
var quantiles = [...]struct {
	q      float64
	column string // WriteText header
	label  string // Prometheus quantile label
}{
	{0.5, "p50", "0.5"},
	{0.9, "p90", "0.9"},
	{0.99, "p99", "0.99"},
	{0.999, "p99.9", "0.999"},
}

// checkMetricName reports whether s is a valid Prometheus metric name.
func checkMetricName(s string) error {
	if s == "" {
		return fmt.Errorf("latency: empty metric name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return fmt.Errorf("latency: metric name %q: byte %d (%q) not in [a-zA-Z_:][a-zA-Z0-9_:]*", s, i, c)
	}
	return nil
}

// checkLabelName reports whether s is a valid Prometheus label name, and not one
// the exposition reserves (a leading "__", or "quantile" which summaries use).
func checkLabelName(s string) error {
	if s == "" {
		return fmt.Errorf("empty label name")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return fmt.Errorf("label name %q: byte %d (%q) not in [a-zA-Z_][a-zA-Z0-9_]*", s, i, c)
	}
	if len(s) >= 2 && s[:2] == "__" {
		return fmt.Errorf("label name %q: names starting __ are reserved", s)
	}
	return nil
}

// appendLabels appends {name="value",...} with values escaped as the Prometheus
// text format wants (backslash, double quote, newline); nothing if there are no
// labels. The text dump uses the same spelling, so one line is one metric there too.
func appendLabels(b []byte, labels [][2]string) []byte {
	if len(labels) == 0 {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEscaped(b, l[0], false) // a no-op for valid names; WriteText takes any
		b = append(b, '=', '"')
		b = appendEscaped(b, l[1], true)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendEscaped escapes backslash and newline, and double quote if quote is set
// (label values escape it, HELP text does not).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat spells a value as both renderings do: integers without a fraction or
// exponent up to 2^53 (counters stay readable), otherwise Go's shortest 'g' form,
// and NaN, +Inf, -Inf as Prometheus spells them.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) <= 1<<53:
		return strconv.AppendFloat(b, v, 'f', 0, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
