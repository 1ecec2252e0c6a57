package latency

import "strconv"

// Stage is a point in a datagram's path through the broker, in order.
type Stage uint8

// The stages a publication passes. The broker never reads a clock, so who stamps
// which is the driver's business; often only Received and Sent are stamped (the
// driver's Mark and its write), which is the end-to-end residence time.
const (
	Received Stage = iota // read from the socket
	Decoded               // parsed and validated
	Matched               // subscribers found
	Queued                // outbound datagrams built and queued
	Sent                  // written to the socket

	NumStages = iota // the number of stages
)

var stageNames = [NumStages]string{"received", "decoded", "matched", "queued", "sent"}

// String returns the stage's lower-case name, "received" through "sent".
func (s Stage) String() string {
	if s < NumStages {
		return stageNames[s]
	}
	return "Stage(" + strconv.Itoa(int(s)) + ")"
}

// Tracer keeps one Histogram per interval between consecutive stages (the
// interval ending at Decoded, Matched, Queued and Sent) and one for the whole
// residence, Received to Sent, all in nanoseconds. Feeding it never allocates;
// reading it (AppendSnapshots, or the histograms' own Snapshot) may happen on
// another goroutine, as for Histogram.
//
// Why per interval and not per stage: a histogram of "time to Matched" would mix
// decode and match cost; the difference of two quantiles is not the quantile of
// the difference, so the intervals have to be measured as intervals.
//
// The zero Tracer is ready to use and behaves as NewTracer(nil). It must not be
// copied after first use.
type Tracer struct {
	clock     Clock  // nil: Default()
	freq      uint64 // clock.Freq(), read once; 0: Default's, nanoseconds
	intervals [NumStages - 1]Histogram
	total     Histogram
}

// NewTracer returns a Tracer whose tick-based methods (Observe, ObserveEndToEnd)
// read stamps of c; a nil c means Default().
func NewTracer(c Clock) *Tracer {
	if c == nil {
		c = Default()
	}
	return &Tracer{clock: c, freq: c.Freq()}
}

// Clock returns the clock whose ticks Observe and ObserveEndToEnd expect.
func (t *Tracer) Clock() Clock {
	if t.clock == nil {
		return Default()
	}
	return t.clock
}

// nanos converts ticks of the tracer's clock.
func (t *Tracer) nanos(ticks uint64) uint64 {
	if t.freq == 0 {
		return ticks // the zero Tracer: Default's ticks are nanoseconds
	}
	return nanos(ticks, t.freq)
}

// Observe records one datagram's stamps, in ticks of the tracer's clock, indexed by
// Stage. A zero stamp means the stage was not stamped: intervals touching it are
// skipped, and the end-to-end interval needs Received and Sent. An interval whose
// end is before its start can only come from a clock that is not monotonic (a TSC
// read on two unsynchronised cores) and is skipped rather than recorded as a huge
// value.
func (t *Tracer) Observe(stamps *[NumStages]uint64) {
	for s := Decoded; s < NumStages; s++ {
		if a, b := stamps[s-1], stamps[s]; a != 0 && b >= a {
			t.intervals[s-1].Record(t.nanos(b - a))
		}
	}
	t.ObserveEndToEnd(stamps[Received], stamps[Sent])
}

// ObserveEndToEnd records a residence time from the Received and Sent stamps, in
// ticks of the tracer's clock. It has the shape of the driver's observe hook
// (net/serve Options.Observe: the datagram's Mark and the clock after the write),
// so t.ObserveEndToEnd can be passed there directly. Stamps as in Observe.
func (t *Tracer) ObserveEndToEnd(received, sent uint64) {
	if received != 0 && sent >= received {
		t.total.Record(t.nanos(sent - received))
	}
}

// RecordStage records ns nanoseconds for the interval ending at stage s (from the
// stage before it). Received has no interval before it: RecordStage(Received, …)
// and out-of-range stages are ignored.
func (t *Tracer) RecordStage(s Stage, ns uint64) {
	if s > Received && s < NumStages {
		t.intervals[s-1].Record(ns)
	}
}

// RecordEndToEnd records ns nanoseconds of end-to-end residence (Received to Sent).
func (t *Tracer) RecordEndToEnd(ns uint64) { t.total.Record(ns) }

// Stage returns the histogram of the interval ending at s, or nil for Received
// and out-of-range stages.
func (t *Tracer) Stage(s Stage) *Histogram {
	if s > Received && s < NumStages {
		return &t.intervals[s-1]
	}
	return nil
}

// EndToEnd returns the histogram of Received to Sent.
func (t *Tracer) EndToEnd() *Histogram { return &t.total }

// Reset empties every histogram, with Histogram.Reset's caveat about concurrent
// writers.
func (t *Tracer) Reset() {
	for i := range t.intervals {
		t.intervals[i].Reset()
	}
	t.total.Reset()
}

// AppendSnapshots appends a snapshot of each histogram to dst, ready for WriteText
// and WritePrometheus: the end-to-end one first, named "latency_end_to_end", then
// the intervals in stage order, named "latency_received_decoded" and so on.
func (t *Tracer) AppendSnapshots(dst []NamedHistogram) []NamedHistogram {
	dst = append(dst, NamedHistogram{
		Name: "latency_end_to_end",
		Help: "Residence time of a datagram in the broker, received to sent.",
	})
	t.total.snapshotInto(&dst[len(dst)-1].Snap)
	for s := Decoded; s < NumStages; s++ {
		from, to := stageNames[s-1], stageNames[s]
		dst = append(dst, NamedHistogram{
			Name: "latency_" + from + "_" + to,
			Help: "Time from " + from + " to " + to + ".",
		})
		t.intervals[s-1].snapshotInto(&dst[len(dst)-1].Snap)
	}
	return dst
}
