package latency

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	var h Histogram
	for _, v := range []uint64{49, 50, 1949, 1950} {
		h.Record(v)
	}
	snap := h.Snapshot()
	for _, tc := range []struct {
		name  string
		title string
		ms    []Metric
		hs    []NamedHistogram
		want  string
	}{
		{name: "nothing"},
		{name: "title only", title: "a\nb", want: "== a\\nb ==\n"},
		{
			name: "metrics only",
			ms: []Metric{
				{Name: "a", Value: 1.5},
				{Name: "bb", Labels: [][2]string{{"k", "q\"\\\n"}, {"z", "µ"}}, Value: -3},
				{Name: "c", Value: math.NaN()},
				{Name: "d", Value: 1e20},
				{Name: "e", Value: math.Inf(1)},
			},
			want: "" +
				"a                        1.5\n" +
				"bb{k=\"q\\\"\\\\\\n\",z=\"µ\"}     -3\n" +
				"c                        NaN\n" +
				"d                      1e+20\n" +
				"e                       +Inf\n",
		},
		{
			name: "histograms only",
			// 49 ns rounds to 0.0 µs, 50 ns up to 0.1; 1949 ns to 1.9, 1950 to 2.0
			// (1950's bucket is [1920, 1983]: the quantile is 1983 ns, 2.0 µs).
			hs: []NamedHistogram{{Name: "rtt", Snap: snap}, {Name: "empty"}},
			want: "" +
				"histogram (µs)  count  p50  p90  p99  p99.9  max\n" +
				"rtt                 4  0.1  2.0  2.0    2.0  2.0\n" +
				"empty               0    -    -    -      -    -\n",
		},
	} {
		var b bytes.Buffer
		if err := WriteText(&b, tc.title, tc.ms, tc.hs); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := b.String(); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
	if got := string(appendMicros(nil, &snap, 49)); got != "0.0" {
		t.Errorf("49 ns = %s µs, want 0.0", got)
	}
}

// countingWriter counts Write calls and fails with err, if set.
type countingWriter struct {
	writes int
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// TestWritesOnce checks that a dump is one Write (a serial console interleaves
// nothing into it) and that the writer's error is returned.
func TestWritesOnce(t *testing.T) {
	ms := []Metric{{Name: "a", Value: 1}, {Name: "b", Value: 2}}
	hs := NewTracer(nil).AppendSnapshots(nil)
	for name, write := range map[string]func(*countingWriter) error{
		"WriteText":       func(w *countingWriter) error { return WriteText(w, "t", ms, hs) },
		"WritePrometheus": func(w *countingWriter) error { return WritePrometheus(w, "p", ms, hs) },
	} {
		w := &countingWriter{}
		if err := write(w); err != nil || w.writes != 1 {
			t.Errorf("%s: %d writes, error %v; want 1 write, no error", name, w.writes, err)
		}
		boom := errors.New("boom")
		if err := write(&countingWriter{err: boom}); err != boom {
			t.Errorf("%s: error %v, want the writer's", name, err)
		}
	}
}

// TestWriteTextColumns checks the documented layout on random tables: every
// histogram row has the header's width and its cells end where the header's do.
func TestWriteTextColumns(t *testing.T) {
	var h Histogram
	for v := uint64(1); v < 1<<40; v *= 3 {
		h.Record(v)
	}
	hs := []NamedHistogram{{Name: "x", Snap: h.Snapshot()}, {Name: "a_much_longer_name"}}
	ms := []Metric{{Name: "m", Value: 12345678}}
	var b strings.Builder
	if err := WriteText(&b, "", ms, hs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 5 || lines[1] != "" {
		t.Fatalf("want metric, blank, header, 2 rows; got\n%s", b.String())
	}
	header := []rune(lines[2])
	for _, l := range lines[3:] {
		row := []rune(l)
		if len(row) != len(header) {
			t.Errorf("row %q is %d runes, header %d", l, len(row), len(header))
			continue
		}
		for i := range row {
			// A cell ends (a space follows a non-space) only where a header cell ends.
			if i+1 < len(row) && row[i] != ' ' && row[i+1] == ' ' && i > len("a_much_longer_name") &&
				!(header[i] != ' ' && header[i+1] == ' ') {
				t.Errorf("row %q: a cell ends at column %d, the header's do not", l, i)
			}
		}
	}
}
