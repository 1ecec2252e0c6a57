package latency_test

import (
	"fmt"
	"os"

	"github.com/musqratt/musqratt/latency"
)

// The residence histogram and a few counters, as the serial console shows them.
func ExampleWriteText() {
	tr := latency.NewTracer(latency.Monotonic())
	for i := range uint64(1000) {
		tr.RecordEndToEnd(20_000 + i*i/10) // 20 µs to 120 µs
	}
	ms := []latency.Metric{
		{Name: "sessions", Kind: latency.Gauge, Value: 3},
		{Name: "datagrams_in_total", Kind: latency.Counter, Value: 1042},
		{Name: "dropped_total", Kind: latency.Counter, Labels: [][2]string{{"reason", "malformed"}}, Value: 2},
	}
	hs := tr.AppendSnapshots(nil)[:2] // end to end, received→decoded (empty)
	if err := latency.WriteText(os.Stdout, "musqratt", ms, hs); err != nil {
		panic(err)
	}
	// Output:
	// == musqratt ==
	// sessions                              3
	// datagrams_in_total                 1042
	// dropped_total{reason="malformed"}     2
	//
	// histogram (µs)                     count   p50    p90    p99  p99.9    max
	// latency_end_to_end                  1000  45.1  102.4  118.8  119.8  119.8
	// latency_received_decoded               0     -      -      -      -      -
}

// The same numbers for a Prometheus scrape.
func ExampleWritePrometheus() {
	var h latency.Histogram
	for i := range uint64(1000) {
		h.Record(20_000 + i*i/10)
	}
	ms := []latency.Metric{
		{Name: "dropped_total", Help: "Datagrams dropped.", Kind: latency.Counter, Labels: [][2]string{{"reason", "malformed"}}, Value: 2},
		{Name: "dropped_total", Kind: latency.Counter, Labels: [][2]string{{"reason", "rate \"limit\""}}, Value: 5},
	}
	hs := []latency.NamedHistogram{{Name: "residence", Help: "Received to sent.", Snap: h.Snapshot()}}
	if err := latency.WritePrometheus(os.Stdout, "musqratt", ms, hs); err != nil {
		panic(err)
	}
	// Output:
	// # HELP musqratt_dropped_total Datagrams dropped.
	// # TYPE musqratt_dropped_total counter
	// musqratt_dropped_total{reason="malformed"} 2
	// musqratt_dropped_total{reason="rate \"limit\""} 5
	// # HELP musqratt_residence_seconds Received to sent.
	// # TYPE musqratt_residence_seconds summary
	// musqratt_residence_seconds{quantile="0.5"} 4.5055e-05
	// musqratt_residence_seconds{quantile="0.9"} 0.000102399
	// musqratt_residence_seconds{quantile="0.99"} 0.000118783
	// musqratt_residence_seconds{quantile="0.999"} 0.0001198
	// musqratt_residence_seconds_sum 0.0532829
	// musqratt_residence_seconds_count 1000
}

// A driver stamps each stage with its clock and hands the stamps over once the
// datagram is sent. Here the clock is a board's 62.5 MHz counter (16 ns a tick),
// read by hand.
func ExampleTracer() {
	var ticks uint64
	clock := latency.Func(func() uint64 { return ticks }, 62_500_000)
	tr := latency.NewTracer(clock)

	var stamps [latency.NumStages]uint64
	for s := latency.Received; s < latency.NumStages; s++ {
		ticks += 100 // the work of the stage before s
		stamps[s] = clock.Now()
	}
	tr.Observe(&stamps)

	// The driver's observe hook (Mark, clock after the write) fits ObserveEndToEnd.
	tr.ObserveEndToEnd(1000, 1250)

	for _, h := range tr.AppendSnapshots(nil) {
		fmt.Printf("%-26s n=%d max=%dns\n", h.Name, h.Snap.Count(), h.Snap.Max())
	}
	// Output:
	// latency_end_to_end         n=2 max=6400ns
	// latency_received_decoded   n=1 max=1600ns
	// latency_decoded_matched    n=1 max=1600ns
	// latency_matched_queued     n=1 max=1600ns
	// latency_queued_sent        n=1 max=1600ns
}
