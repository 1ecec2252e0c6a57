package latency

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// exposition is what parseExposition reads back from a text exposition.
type exposition struct {
	help    map[string]string  // family -> unescaped HELP text
	typ     map[string]string  // family -> TYPE
	samples map[string]float64 // name{sorted labels, unescaped} -> value
	order   []string           // families in order of appearance
}

// parseExposition is a strict reader of the Prometheus text format 0.0.4, stricter
// than Prometheus itself: every line ends in \n, no blank lines or other comments,
// at most one HELP and one TYPE per family and both before its samples, a
// family's lines contiguous, only the three escapes in label values and help,
// no trailing comma, no duplicate series, summaries with quantile labels on the
// base name and plain _sum and _count.
func parseExposition(text string) (*exposition, error) {
	e := &exposition{help: map[string]string{}, typ: map[string]string{}, samples: map[string]float64{}}
	if text == "" {
		return e, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("does not end in a newline")
	}
	closed := map[string]bool{}
	current := ""
	enter := func(family string, sample bool) error {
		if family != current {
			if closed[family] {
				return fmt.Errorf("family %s reopened", family)
			}
			if current != "" {
				closed[current] = true
			}
			current = family
			e.order = append(e.order, family)
		} else if !sample && e.typ[family] != "" {
			return fmt.Errorf("family %s: HELP or TYPE after its TYPE", family)
		}
		return nil
	}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, a...))
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || f[0] != "#" || (f[1] != "HELP" && f[1] != "TYPE") {
				return nil, fail("not a HELP or TYPE line")
			}
			if !validMetricName(f[2]) {
				return nil, fail("bad metric name")
			}
			if err := enter(f[2], false); err != nil {
				return nil, fail("%v", err)
			}
			switch f[1] {
			case "HELP":
				if _, dup := e.help[f[2]]; dup {
					return nil, fail("second HELP")
				}
				h, err := unescape(f[3], false)
				if err != nil {
					return nil, fail("%v", err)
				}
				e.help[f[2]] = h
			case "TYPE":
				switch f[3] {
				case "counter", "gauge", "summary", "histogram", "untyped":
				default:
					return nil, fail("unknown type")
				}
				e.typ[f[2]] = f[3]
			}
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !validMetricName(name) {
			return nil, fail("bad metric name")
		}
		var labels [][2]string
		if strings.HasPrefix(rest, "{") {
			var err error
			if labels, rest, err = parseLabels(rest[1:]); err != nil {
				return nil, fail("%v", err)
			}
		}
		f := strings.Split(strings.TrimPrefix(rest, " "), " ")
		if !strings.HasPrefix(rest, " ") || len(f) < 1 || len(f) > 2 || f[0] == "" {
			return nil, fail("want one space, a value and an optional timestamp")
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || (math.IsInf(v, 0) && f[0] != "+Inf" && f[0] != "-Inf") || (math.IsNaN(v) && f[0] != "NaN") {
			return nil, fail("bad value %q", f[0])
		}
		if len(f) == 2 {
			if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
				return nil, fail("bad timestamp")
			}
		}
		family := name
		for _, suffix := range []string{"_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && e.typ[base] == "summary" {
				family = base
			}
		}
		if err := enter(family, true); err != nil {
			return nil, fail("%v", err)
		}
		if e.typ[family] == "" {
			return nil, fail("sample before its TYPE")
		}
		hasQuantile := slices.ContainsFunc(labels, func(l [2]string) bool { return l[0] == "quantile" })
		if e.typ[family] == "summary" {
			if (name == family) != hasQuantile {
				return nil, fail("summary: quantile label on the base name only")
			}
			if hasQuantile {
				if i := slices.IndexFunc(labels, func(l [2]string) bool { return l[0] == "quantile" }); true {
					if q, err := strconv.ParseFloat(labels[i][1], 64); err != nil || q < 0 || q > 1 {
						return nil, fail("bad quantile %q", labels[i][1])
					}
				}
			}
			if name == family+"_count" && (v != math.Trunc(v) || v < 0) {
				return nil, fail("count is not a whole number")
			}
		}
		slices.SortFunc(labels, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		key := name + fmt.Sprint(labels)
		if _, dup := e.samples[key]; dup {
			return nil, fail("duplicate series")
		}
		e.samples[key] = v
	}
	return e, nil
}

// parseLabels reads name="value",... up to and including the closing brace.
func parseLabels(s string) (labels [][2]string, rest string, err error) {
	for {
		if strings.HasPrefix(s, "}") && len(labels) == 0 {
			return nil, s[1:], nil
		}
		eq := strings.Index(s, `="`)
		if eq < 0 || !validLabelName(s[:eq]) {
			return nil, "", fmt.Errorf("bad label name in %q", s)
		}
		name := s[:eq]
		if slices.ContainsFunc(labels, func(l [2]string) bool { return l[0] == name }) {
			return nil, "", fmt.Errorf("label %s repeated", name)
		}
		s = s[eq+2:]
		end := -1
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				end = i
				break
			} else if s[i] == '\n' {
				break
			}
		}
		if end < 0 {
			return nil, "", fmt.Errorf("label %s: unterminated value", name)
		}
		v, err := unescape(s[:end], true)
		if err != nil {
			return nil, "", fmt.Errorf("label %s: %v", name, err)
		}
		labels = append(labels, [2]string{name, v})
		s = s[end+1:]
		switch {
		case strings.HasPrefix(s, "}"):
			return labels, s[1:], nil
		case strings.HasPrefix(s, ",}"):
			return nil, "", fmt.Errorf("trailing comma")
		case strings.HasPrefix(s, ","):
			s = s[1:]
		default:
			return nil, "", fmt.Errorf("want , or } after label %s", name)
		}
	}
}

// unescape undoes \\ and \n, and \" in label values; any other escape, or a bare
// double quote in a label value, is an error.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' && label {
			return "", fmt.Errorf("bare double quote")
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !label {
				return "", fmt.Errorf(`\" in help text`)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

func validMetricName(s string) bool { return checkMetricName(s) == nil }
func validLabelName(s string) bool  { return s != "" && checkLabelName(s) == nil || s == "quantile" }

func TestWritePrometheusParses(t *testing.T) {
	var h Histogram
	for v := uint64(1000); v < 1e9; v = v*11/10 + 1 {
		h.Record(v)
	}
	nasty := "back\\slash \"quoted\"\nnew line µ {}=,"
	ms := []Metric{
		{Name: "in_total", Help: "Datagrams in.\nSecond line \\ with backslash and \"quotes\".", Kind: Counter, Value: 1042},
		{Name: "sessions", Kind: Gauge, Labels: [][2]string{{"state", "active"}}, Value: 3},
		{Name: "temperature", Kind: Gauge, Value: -12.5},
		{Name: "sessions", Kind: Gauge, Labels: [][2]string{{"state", "asleep"}}, Value: 1},
		{Name: "odd", Kind: Gauge, Labels: [][2]string{{"v", nasty}, {"b", ""}}, Value: math.NaN()},
		{Name: "big", Kind: Counter, Value: 1e300},
		{Name: "inf", Value: math.Inf(-1)},
	}
	hs := []NamedHistogram{
		{Name: "residence", Help: "Received to sent.", Snap: h.Snapshot()},
		{Name: "empty"},
	}
	var b strings.Builder
	if err := WritePrometheus(&b, "mq", ms, hs); err != nil {
		t.Fatal(err)
	}
	e, err := parseExposition(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	wantOrder := []string{"mq_in_total", "mq_sessions", "mq_temperature", "mq_odd", "mq_big", "mq_inf",
		"mq_residence_seconds", "mq_empty_seconds"}
	if !slices.Equal(e.order, wantOrder) {
		t.Errorf("families %v, want %v", e.order, wantOrder)
	}
	if got := e.help["mq_in_total"]; got != ms[0].Help {
		t.Errorf("help read back as %q, want %q", got, ms[0].Help)
	}
	if _, ok := e.help["mq_sessions"]; ok {
		t.Error("HELP written for a metric without help")
	}
	for fam, typ := range map[string]string{"mq_in_total": "counter", "mq_sessions": "gauge", "mq_inf": "gauge",
		"mq_residence_seconds": "summary"} {
		if e.typ[fam] != typ {
			t.Errorf("%s: TYPE %q, want %q", fam, e.typ[fam], typ)
		}
	}
	s := h.Snapshot()
	for key, want := range map[string]float64{
		"mq_sessions[[state active]]":            3,
		"mq_sessions[[state asleep]]":            1,
		"mq_temperature[]":                       -12.5,
		"mq_big[]":                               1e300,
		"mq_inf[]":                               math.Inf(-1),
		"mq_odd[[b ] [v " + nasty + "]]":         math.NaN(),
		"mq_residence_seconds[[quantile 0.99]]":  float64(s.Quantile(0.99)) / 1e9,
		"mq_residence_seconds[[quantile 0.999]]": float64(s.Quantile(0.999)) / 1e9,
		"mq_residence_seconds_sum[]":             float64(s.Sum()) / 1e9,
		"mq_residence_seconds_count[]":           float64(s.Count()),
		"mq_empty_seconds[[quantile 0.5]]":       math.NaN(),
		"mq_empty_seconds_count[]":               0,
		"mq_residence_seconds[[quantile 0.5]]":   float64(s.Quantile(0.5)) / 1e9,
		"mq_residence_seconds[[quantile 0.9]]":   float64(s.Quantile(0.9)) / 1e9,
		"mq_empty_seconds_sum[]":                 0,
		"mq_empty_seconds[[quantile 0.999]]":     math.NaN(),
		"mq_in_total[]":                          1042,
		"mq_empty_seconds[[quantile 0.99]]":      math.NaN(),
		"mq_empty_seconds[[quantile 0.9]]":       math.NaN(),
	} {
		got, ok := e.samples[key]
		if !ok || !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if len(e.samples) != 19 {
		t.Errorf("%d samples, want 19:\n%s", len(e.samples), b.String())
	}

	// Without a prefix, names are used as they are.
	b.Reset()
	if err := WritePrometheus(&b, "", ms[:1], nil); err != nil || !strings.Contains(b.String(), "\nin_total 1042\n") {
		t.Errorf("no prefix: error %v, output\n%s", err, b.String())
	}
}

// TestParserRejects makes sure the strict parser is worth trusting: it rejects
// each rule's violation.
func TestParserRejects(t *testing.T) {
	for _, text := range []string{
		"a 1",                                   // no final newline
		"# TYPE a gauge\n\na 1\n",               // blank line
		"a 1\n",                                 // no TYPE
		"# TYPE a gauge\na{b=\"c\",} 1\n",       // trailing comma
		"# TYPE a gauge\na{b=\"c\"\"} 1\n",      // bare quote
		"# TYPE a gauge\na{b=\"\\t\"} 1\n",      // unknown escape
		"# TYPE a gauge\na 1\na 2\n",            // duplicate series
		"# TYPE a gauge\na one\n",               // bad value
		"# TYPE a gauge\na Inf\n",               // Inf without its sign
		"# TYPE a gauge\na  1\n",                // two spaces
		"# TYPE a gauge\n# TYPE b gauge\na 1\n", // family reopened
		"# TYPE a gauge\na 1\n# HELP a x\n",     // HELP after samples
		"# TYPE 1a gauge\n",                     // bad name
		"# TYPE a summary\na 1\n",               // summary sample without quantile
		"# TYPE a summary\na_sum{quantile=\"0.5\"} 1\n",
		"# TYPE a gauge\na{__x=\"1\"} 1\n", // reserved label
	} {
		if _, err := parseExposition(text); err == nil {
			t.Errorf("parser accepted %q", text)
		}
	}
}

func TestWritePrometheusErrors(t *testing.T) {
	hist := func(name string) []NamedHistogram { return []NamedHistogram{{Name: name}} }
	for _, tc := range []struct {
		prefix string
		ms     []Metric
		hs     []NamedHistogram
		want   string
	}{
		{"", []Metric{{Name: ""}}, nil, "empty metric name"},
		{"", []Metric{{Name: "9lives"}}, nil, `metric name "9lives"`},
		{"my-app", []Metric{{Name: "x"}}, nil, `metric name "my-app_x"`},
		{"", []Metric{{Name: "x", Kind: 7}}, nil, "unknown Kind(7)"},
		{"", []Metric{{Name: "x", Labels: [][2]string{{"a b", "1"}}}}, nil, `label name "a b"`},
		{"", []Metric{{Name: "x", Labels: [][2]string{{"__name__", "1"}}}}, nil, "reserved"},
		{"", []Metric{{Name: "x", Labels: [][2]string{{"quantile", "1"}}}}, nil, "quantile is reserved"},
		{"", []Metric{{Name: "x", Labels: [][2]string{{"a", "1"}, {"a", "2"}}}}, nil, "label a given twice"},
		{"", []Metric{{Name: "x", Kind: Counter}, {Name: "x", Kind: Gauge, Labels: [][2]string{{"a", "1"}}}}, nil,
			"metric x: gauge here, counter in an earlier"},
		{"", []Metric{
			{Name: "x", Labels: [][2]string{{"a", "1"}, {"b", "2"}}},
			{Name: "x", Labels: [][2]string{{"b", "2"}, {"a", "1"}}},
		}, nil, `metric x{a="1",b="2"}: appears twice`},
		{"p", []Metric{{Name: "rtt_seconds_count"}}, hist("rtt"), "name p_rtt_seconds_count already used by metric"},
		{"p", nil, append(hist("rtt"), hist("rtt")...), "already used by histogram p_rtt_seconds"},
		{"", nil, hist("a.b"), `metric name "a.b_seconds"`},
	} {
		var b strings.Builder
		err := WritePrometheus(&b, tc.prefix, tc.ms, tc.hs)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "latency: ") {
			t.Errorf("prefix %q, %+v, %d histograms: error %v, want one containing %q", tc.prefix, tc.ms, len(tc.hs), err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("wrote %d bytes before failing", b.Len())
		}
	}
}

func BenchmarkWritePrometheus(b *testing.B) {
	tr := NewTracer(nil)
	for i := range uint64(1000) {
		tr.RecordEndToEnd(i * 1000)
	}
	hs := tr.AppendSnapshots(nil)
	ms := []Metric{{Name: "a", Value: 1}, {Name: "b", Kind: Counter, Labels: [][2]string{{"x", "y"}}, Value: 2}}
	b.ReportAllocs()
	for b.Loop() {
		if err := WritePrometheus(&countingWriter{}, "mq", ms, hs); err != nil {
			b.Fatal(err)
		}
	}
}
