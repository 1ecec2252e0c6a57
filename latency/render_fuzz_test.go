package latency

import (
	"math"
	"strings"
	"testing"
)

// FuzzRender feeds arbitrary names, labels, help and values to both renderings:
// whatever WritePrometheus accepts must parse strictly and read back the same
// label value, help and value; WriteText must give exactly one line per metric.
func FuzzRender(f *testing.F) {
	f.Add("sessions", "state", "active", "Sessions.", 3.0, "t")
	f.Add("a:b_c", "le", "back\\slash \"q\"\nnl", "help \\ \n \"", math.Inf(-1), "x\ny")
	f.Add("9", "__x", "\xff", "", math.NaN(), "")
	f.Fuzz(func(t *testing.T, name, label, value, help string, v float64, title string) {
		ms := []Metric{
			{Name: name, Help: help, Kind: Counter, Labels: [][2]string{{label, value}}, Value: v},
			{Name: name, Kind: Counter, Value: -v},
		}
		var h Histogram
		h.Record(uint64(math.Float64bits(v)))
		hs := []NamedHistogram{{Name: name + "_h", Help: help, Snap: h.Snapshot()}}

		var text strings.Builder
		if err := WriteText(&text, title, ms, hs); err != nil {
			t.Fatal(err)
		}
		want := len(ms) + 3 // metrics, blank, header, histogram
		if title != "" {
			want++
		}
		if n := strings.Count(text.String(), "\n"); n != want {
			t.Fatalf("WriteText wrote %d lines, want %d:\n%s", n, want, text.String())
		}

		var b strings.Builder
		if err := WritePrometheus(&b, "p", ms, hs); err != nil {
			if b.Len() != 0 {
				t.Fatalf("error %v after writing %d bytes", err, b.Len())
			}
			return
		}
		e, err := parseExposition(b.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		fam := "p_" + name
		if help != "" && e.help[fam] != help {
			t.Errorf("help %q read back as %q", help, e.help[fam])
		}
		got, ok := e.samples[fam+"[["+label+" "+value+"]]"]
		if !ok || !(got == v || math.IsNaN(got) && math.IsNaN(v)) {
			t.Errorf("value %v with label %q=%q read back as %v (found %v)\n%s", v, label, value, got, ok, b.String())
		}
	})
}
