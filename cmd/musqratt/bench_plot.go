package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
)

// writePlot writes an SVG of the latency CDFs of the target and the floor (all rounds
// merged), on a logarithmic latency axis.
func writePlot(file string, o benchOpts, target, floor []int64) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	plotSVG(w, o, target, floor)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func plotSVG(w *bufio.Writer, o benchOpts, target, floor []int64) {
	const (
		width, height = 800, 480
		left, right   = 70, 40
		top, bottom   = 40, 50
		pw, ph        = width - left - right, height - top - bottom
	)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]int64{target, floor} {
		if len(s) > 0 {
			lo = math.Min(lo, math.Max(float64(s[0])/1e3, 1))
			hi = math.Max(hi, float64(s[len(s)-1])/1e3)
		}
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		lo, hi = 1, 10
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	x := func(us float64) float64 {
		v := (math.Log10(math.Max(us, math.Pow(10, d0))) - d0) / (d1 - d0)
		return left + v*pw
	}
	y := func(frac float64) float64 { return top + (1-frac)*ph }

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="20" font-size="14">musqratt bench: latency CDF, QoS %d, %d msg at %g/s, %d-octet payload, %d round(s)</text>`+"\n",
		left, o.qos, o.n, o.rate, o.size, o.rounds)
	// Grid and axes.
	for d := d0; d <= d1; d++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow(10, d)
			if d == d1 && m > 1 {
				break
			}
			xx := x(v)
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
				fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", xx, height-bottom+18, v)
			}
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", xx, top, xx, height-bottom, stroke)
		}
	}
	for _, fr := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(fr), width-right, y(fr))
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(fr)+4, fr)
	}
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">latency, µs (publisher send → subscriber receive), log scale</text>`+"\n", left+pw/2, height-12)
	fmt.Fprintf(w, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">fraction of messages</text>`+"\n", top+ph/2, top+ph/2)
	// Curves.
	series := []struct {
		name  string
		color string
		s     []int64
	}{{"target", "#d62728", target}, {"floor (UDP relay)", "#1f77b4", floor}}
	for i, se := range series {
		if len(se.s) > 0 {
			fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="`, se.color)
			step := max(1, len(se.s)/1000)
			for j := 0; j < len(se.s); j += step {
				fmt.Fprintf(w, "%.1f,%.1f ", x(float64(se.s[j])/1e3), y(float64(j+1)/float64(len(se.s))))
			}
			fmt.Fprintf(w, "%.1f,%.1f", x(float64(se.s[len(se.s)-1])/1e3), y(1))
			fmt.Fprintln(w, `"/>`)
		}
		ly := top + ph/2 + 18*i
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+pw-250, ly, left+pw-225, ly, se.color)
		fmt.Fprintf(w, `<text x="%d" y="%d">%s (n=%d)</text>`+"\n", left+pw-220, ly+4, se.name, len(se.s))
	}
	fmt.Fprintln(w, "</svg>")
}
