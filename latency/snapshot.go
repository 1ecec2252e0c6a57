package latency

import "math"

// HistSnapshot is a copy of a Histogram's counts (see Histogram for how exact a
// copy taken during Records is): a plain value, safe to keep, pass between
// goroutines and merge. Its methods take a pointer only because it is about 10 KB;
// none of them modifies it except Merge.
//
// The zero value is an empty snapshot: Count, Min, Max, Quantile and Mean are 0.
type HistSnapshot struct {
	counts   [numBuckets]uint64
	count    uint64
	sum      uint64
	min, max uint64
}

// Count returns the number of values recorded.
func (s *HistSnapshot) Count() uint64 { return s.count }

// Sum returns the sum of the values recorded (their true values, including those
// above MaxTrackable). It wraps after 2^64 ns, about 584 years of latency.
func (s *HistSnapshot) Sum() uint64 { return s.sum }

// Min returns the smallest value recorded, exactly; 0 if there is none.
func (s *HistSnapshot) Min() uint64 { return s.min }

// Max returns the largest value recorded, exactly (even above MaxTrackable); 0 if
// there is none.
func (s *HistSnapshot) Max() uint64 { return s.max }

// Mean returns the arithmetic mean of the values recorded (exact up to float64
// rounding); 0 if there is none.
func (s *HistSnapshot) Mean() float64 {
	if s.count == 0 {
		return 0
	}
	m := float64(s.sum) / float64(s.count)
	// A snapshot taken during Records may hold a sum a value ahead of its count:
	// keep the mean within the extremes anyway.
	return math.Min(math.Max(m, float64(s.min)), float64(s.max))
}

// Quantile returns the q-quantile (0 <= q <= 1) of the values recorded, as the
// upper bound of the bucket holding the value of rank ceil(q*Count) (the smallest
// for q = 0), clamped to [Min, Max]. So for values up to MaxTrackable it is never
// below the exact quantile and at most RelativePrecision above it: an upper
// bound, which is the safe side for a latency. Quantile(0) is Min, Quantile(1) is
// Max; q below 0 (or NaN) counts as 0 and above 1 as 1. An empty snapshot gives 0.
//
// It walks the buckets up to the one it reports (at most 1,217 additions); it does
// not allocate.
func (s *HistSnapshot) Quantile(q float64) uint64 {
	if s.count == 0 {
		return 0
	}
	if !(q > 0) {
		return s.min
	}
	if q >= 1 {
		return s.max
	}
	// q*count is rounded (0.017 is not exact in binary, and 0.017*3000 comes out
	// as 51.00000000000001): a nudge far below one rank and far above the rounding
	// keeps ceil from skipping to the next rank.
	r := q * float64(s.count)
	rank := uint64(math.Ceil(r - r*1e-12))
	rank = max(1, min(rank, s.count))
	var seen uint64
	for i := range s.counts {
		seen += s.counts[i]
		if seen >= rank {
			return max(s.min, min(bucketHigh(i), s.max))
		}
	}
	return s.max // counts summing below count: not a snapshot this package made
}

// Merge adds the counts of o to s, as if every value recorded in o had been
// recorded in s too. It is how several writers' histograms (one per connection
// or core, say) become one report.
func (s *HistSnapshot) Merge(o *HistSnapshot) {
	if o.count == 0 {
		return
	}
	if s.count == 0 {
		s.min, s.max = o.min, o.max
	} else {
		s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	}
	for i := range s.counts {
		s.counts[i] += o.counts[i]
	}
	s.count += o.count
	s.sum += o.sum
}
