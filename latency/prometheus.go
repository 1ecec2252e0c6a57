package latency

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WritePrometheus writes metrics and histograms in the Prometheus text exposition
// format, version 0.0.4 (Content-Type "text/plain; version=0.0.4"), in one Write
// call.
//
// prefix, unless empty, is joined to every name with an underscore ("musqratt" and
// "sessions" give musqratt_sessions). Metrics sharing a name are written together
// as one family under one # HELP (omitted if Help is empty) and # TYPE, in the
// order their names first appear. Each histogram becomes a summary named
// prefix_Name_seconds: quantile series for 0.5, 0.9, 0.99 and 0.999 (NaN while
// empty, as Prometheus client libraries write them), then _sum and _count, in
// seconds; the quantiles are HistSnapshot.Quantile's upper bounds.
//
// It checks before writing anything, and returns an error naming the culprit for:
// an invalid metric or label name, a reserved label name (leading "__", or
// "quantile"), help or a label value that is not UTF-8, a label repeated within a
// metric, two metrics of one family with the same labels or different Kinds, an
// unknown Kind, or a name used twice across metrics and histograms (including a
// histogram's _sum and _count). Otherwise it returns w's error, if any.
func WritePrometheus(w io.Writer, prefix string, ms []Metric, hs []NamedHistogram) error {
	full := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "_" + name
	}

	// Families, in order of first appearance, and every name taken so far.
	type family struct {
		name    string
		members []int // indexes into ms
	}
	var families []family
	byName := map[string]int{}
	taken := map[string]string{} // exposed name -> what took it, for the error
	for i := range ms {
		m := &ms[i]
		name := full(m.Name)
		if err := checkMetricName(name); err != nil {
			return err
		}
		if m.Kind != Gauge && m.Kind != Counter {
			return fmt.Errorf("latency: metric %s: unknown %v", name, m.Kind)
		}
		if !utf8.ValidString(m.Help) {
			return fmt.Errorf("latency: metric %s: help %q is not UTF-8", name, m.Help)
		}
		if err := checkLabels(name, m.Labels); err != nil {
			return err
		}
		f, ok := byName[name]
		if !ok {
			if by, dup := taken[name]; dup {
				return fmt.Errorf("latency: metric %s: name already used by %s", name, by)
			}
			taken[name] = "metric " + name
			f = len(families)
			byName[name] = f
			families = append(families, family{name: name})
		} else if first := &ms[families[f].members[0]]; first.Kind != m.Kind {
			return fmt.Errorf("latency: metric %s: %v here, %v in an earlier metric of the family", name, m.Kind, first.Kind)
		}
		families[f].members = append(families[f].members, i)
	}
	for _, f := range families {
		seen := map[string]bool{}
		for _, i := range f.members {
			key := string(appendLabels(nil, sortedLabels(ms[i].Labels)))
			if seen[key] {
				return fmt.Errorf("latency: metric %s%s: appears twice", f.name, key)
			}
			seen[key] = true
		}
	}
	for i := range hs {
		name := full(hs[i].Name) + "_seconds"
		if err := checkMetricName(name); err != nil {
			return err
		}
		if !utf8.ValidString(hs[i].Help) {
			return fmt.Errorf("latency: histogram %s: help %q is not UTF-8", name, hs[i].Help)
		}
		for _, n := range [...]string{name, name + "_sum", name + "_count"} {
			if by, dup := taken[n]; dup {
				return fmt.Errorf("latency: histogram %s: name %s already used by %s", name, n, by)
			}
			taken[n] = "histogram " + name
		}
	}

	var b []byte
	for _, f := range families {
		first := &ms[f.members[0]]
		b = appendHelpType(b, f.name, first.Help, first.Kind.String())
		for _, i := range f.members {
			b = append(b, f.name...)
			b = appendLabels(b, ms[i].Labels)
			b = append(b, ' ')
			b = appendFloat(b, ms[i].Value)
			b = append(b, '\n')
		}
	}
	for i := range hs {
		name := full(hs[i].Name) + "_seconds"
		s := &hs[i].Snap
		b = appendHelpType(b, name, hs[i].Help, "summary")
		for _, q := range quantiles {
			b = append(b, name...)
			b = append(b, `{quantile="`...)
			b = append(b, q.label...)
			b = append(b, `"} `...)
			v := math.NaN()
			if s.Count() > 0 {
				v = seconds(s.Quantile(q.q))
			}
			b = appendFloat(b, v)
			b = append(b, '\n')
		}
		b = append(b, name...)
		b = append(b, "_sum "...)
		b = appendFloat(b, seconds(s.Sum()))
		b = append(b, '\n')
		b = append(b, name...)
		b = append(b, "_count "...)
		b = strconv.AppendUint(b, s.Count(), 10)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

func seconds(ns uint64) float64 { return float64(ns) / 1e9 }

func appendHelpType(b []byte, name, help, typ string) []byte {
	if help != "" {
		b = append(b, "# HELP "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = appendEscaped(b, help, false)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// checkLabels validates a metric's label names and rejects repeats.
func checkLabels(metric string, labels [][2]string) error {
	for i, l := range labels {
		if err := checkLabelName(l[0]); err != nil {
			return fmt.Errorf("latency: metric %s: %w", metric, err)
		}
		if !utf8.ValidString(l[1]) {
			return fmt.Errorf("latency: metric %s: label %s: value %q is not UTF-8", metric, l[0], l[1])
		}
		if l[0] == "quantile" {
			return fmt.Errorf("latency: metric %s: label name quantile is reserved for summaries", metric)
		}
		for _, o := range labels[:i] {
			if o[0] == l[0] {
				return fmt.Errorf("latency: metric %s: label %s given twice", metric, l[0])
			}
		}
	}
	return nil
}

// sortedLabels returns labels sorted by name (a copy), so that two spellings of
// one label set compare equal.
func sortedLabels(labels [][2]string) [][2]string {
	s := slices.Clone(labels)
	slices.SortFunc(s, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return s
}
