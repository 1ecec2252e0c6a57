package latency

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// histHeader is the first header cell of the histogram table; the unit it names
// is that of every duration column.
const histHeader = "histogram (µs)"

// WriteText writes metrics and histograms as the plain text table that the
// serial console and `musqratt stats` print, in one Write call. The format is
// described in the package documentation and is stable: scripts may read it.
// Neither ms nor hs is modified. It returns w's error, if any.
func WriteText(w io.Writer, title string, ms []Metric, hs []NamedHistogram) error {
	// Cells first, so that every column can be padded to its widest cell.
	names := make([][]byte, len(ms))
	values := make([][]byte, len(ms))
	nameW, valueW := utf8.RuneCountInString(histHeader), 0
	if len(hs) == 0 {
		nameW = 0
	}
	for i := range ms {
		names[i] = appendLabels(appendEscaped(nil, ms[i].Name, false), ms[i].Labels)
		values[i] = appendFloat(nil, ms[i].Value)
		nameW = max(nameW, utf8.RuneCount(names[i]))
		valueW = max(valueW, len(values[i]))
	}

	const cols = 2 + len(quantiles) // count, quantiles, max
	header := [cols]string{"count"}
	for i, q := range quantiles {
		header[1+i] = q.column
	}
	header[cols-1] = "max"
	var colW [cols]int
	for i, h := range header {
		colW[i] = len(h)
	}
	cells := make([][cols][]byte, len(hs))
	for i := range hs {
		s := &hs[i].Snap
		nameW = max(nameW, utf8.RuneCountInString(hs[i].Name))
		c := &cells[i]
		c[0] = strconv.AppendUint(nil, s.Count(), 10)
		for j, q := range quantiles {
			c[1+j] = appendMicros(nil, s, s.Quantile(q.q))
		}
		c[cols-1] = appendMicros(nil, s, s.Max())
		for j := range c {
			colW[j] = max(colW[j], len(c[j]))
		}
	}

	var b []byte
	if title != "" {
		b = append(b, "== "...)
		b = appendEscaped(b, title, false)
		b = append(b, " ==\n"...)
	}
	for i := range ms {
		b = appendPadRight(b, names[i], nameW)
		b = append(b, "  "...)
		b = appendPadLeft(b, values[i], valueW)
		b = append(b, '\n')
	}
	if len(hs) > 0 {
		if len(ms) > 0 {
			b = append(b, '\n')
		}
		b = appendPadRight(b, []byte(histHeader), nameW)
		for j, h := range header {
			b = append(b, "  "...)
			b = appendPadLeft(b, []byte(h), colW[j])
		}
		b = append(b, '\n')
		for i := range hs {
			b = appendPadRight(b, appendEscaped(nil, hs[i].Name, false), nameW)
			for j := range cells[i] {
				b = append(b, "  "...)
				b = appendPadLeft(b, cells[i][j], colW[j])
			}
			b = append(b, '\n')
		}
	}
	_, err := w.Write(b)
	return err
}

// appendMicros appends ns as microseconds rounded to one decimal, or "-" when the
// snapshot is empty (a 0.0 would claim a measurement).
func appendMicros(b []byte, s *HistSnapshot, ns uint64) []byte {
	if s.Count() == 0 {
		return append(b, '-')
	}
	tenths := ns / 100
	if ns%100 >= 50 {
		tenths++
	}
	b = strconv.AppendUint(b, tenths/10, 10)
	return append(b, '.', byte('0'+tenths%10))
}

// appendPadRight appends cell left-aligned in width runes; appendPadLeft
// right-aligned. Runes, not bytes, so the µ in a header does not skew a column.
func appendPadRight(b, cell []byte, width int) []byte {
	b = append(b, cell...)
	return appendSpaces(b, width-utf8.RuneCount(cell))
}

func appendPadLeft(b, cell []byte, width int) []byte {
	b = appendSpaces(b, width-utf8.RuneCount(cell))
	return append(b, cell...)
}

func appendSpaces(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	return b
}
