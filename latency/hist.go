package latency

import (
	"math/bits"
	"sync/atomic"
)

// Bucket layout (log-linear, HdrHistogram's with 5 significant bits, about one
// and a half decimal digits):
//
//   - values 0..63 have a bucket each (exact);
//   - above that, each power of two [2^e, 2^(e+1)) is split into 32 equal
//     sub-buckets, so a bucket is at most 1/32 (3.125 %) of its lower bound wide;
//   - values from 2^42 ns (about 73 minutes) up share one overflow bucket.
//
// The index of v >= 32 is (e-4)*32 + (v>>(e-5)) - 32 where e is the position of
// v's top bit: a bit length, a shift and an add, no loop and no table.
const (
	subBits      = 5
	subCount     = 1 << subBits // linear sub-buckets per power of two
	rangeBits    = 42           // values below 1<<rangeBits are bucketed with full precision
	maxTrackable = 1<<rangeBits - 1

	// overflowBucket holds every value above maxTrackable.
	overflowBucket = (rangeBits - subBits + 1) * subCount
	numBuckets     = overflowBucket + 1
)

// MaxTrackable is the largest value (in nanoseconds, about 73 minutes) a Histogram
// buckets with full precision; larger ones share one overflow bucket, though Max and
// the sum still see their true values.
const MaxTrackable uint64 = maxTrackable

// RelativePrecision bounds a quantile's error: for values up to MaxTrackable,
// HistSnapshot.Quantile returns a value v' with v <= v' <= v*(1+RelativePrecision),
// where v is the exact quantile of the recorded values.
const RelativePrecision = 1.0 / subCount

// Histogram counts uint64 values (nanoseconds, by convention) in fixed log-linear
// buckets. Its size is fixed (about 10 KB) and Record never allocates, locks or
// loops, so it can sit on the hot path of a driver loop.
//
// Every field is an atomic counter: one goroutine (or several) may Record while
// others take Snapshots, with no lock and no data race. A snapshot taken during
// Records is not one instant: it may include a value in its Max and sum but not yet
// in its buckets. Record writes the extremes first, the sum next and the bucket
// last, and Snapshot reads in the reverse order, so every value a snapshot counts
// is also within its Min and Max.
//
// The zero value is an empty histogram ready to use. A Histogram must not be copied
// after first use (go vet reports copies); copy a Snapshot instead.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
	// minInv holds ^min, so that its zero value means "no minimum yet" (min =
	// MaxUint64) and the zero Histogram needs no constructor.
	minInv atomic.Uint64
}

// Record counts one value. It is safe to call concurrently with Snapshot, Reset
// and other Records; it does not allocate.
func (h *Histogram) Record(v uint64) {
	// The extremes change rarely, so these are usually a load and a compare. The
	// CAS loops make concurrent writers safe too, at no cost to a single one.
	for inv := ^v; ; {
		old := h.minInv.Load()
		if inv <= old || h.minInv.CompareAndSwap(old, inv) {
			break
		}
	}
	for {
		old := h.max.Load()
		if v <= old || h.max.CompareAndSwap(old, v) {
			break
		}
	}
	h.sum.Add(v)
	h.counts[bucketOf(v)].Add(1)
}

// Reset empties the histogram. Every counter is cleared atomically, but not all of
// them at once: a Record running concurrently with Reset may survive in part (its
// bucket but not its sum, say). For an exact interval, have the writer call Reset
// itself, or take snapshots and compare them instead of resetting.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sum.Store(0)
	h.max.Store(0)
	h.minInv.Store(0)
}

// Snapshot returns a copy of the histogram's current counts. It reads every bucket
// (1,217 atomic loads, about 2 µs on a server core) and is safe to call while
// another goroutine Records; see Histogram for what "current" means then.
func (h *Histogram) Snapshot() HistSnapshot {
	var s HistSnapshot
	h.snapshotInto(&s)
	return s
}

func (h *Histogram) snapshotInto(s *HistSnapshot) {
	s.count = 0
	for i := range h.counts {
		c := h.counts[i].Load()
		s.counts[i] = c
		s.count += c
	}
	s.sum = h.sum.Load()
	s.max = h.max.Load()
	s.min = ^h.minInv.Load()
	if s.count == 0 {
		// A Record in flight may have set the extremes already: an empty snapshot
		// is empty throughout.
		s.sum, s.min, s.max = 0, 0, 0
	}
}

// bucketOf returns the index of the bucket counting v.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	if v > maxTrackable {
		return overflowBucket
	}
	shift := bits.Len64(v) - 1 - subBits // >= 1
	return (shift+1)<<subBits + int(v>>shift) - subCount
}

// bucketHigh returns the largest value counted by bucket i; the overflow bucket's
// is unbounded.
func bucketHigh(i int) uint64 {
	switch {
	case i < 2*subCount:
		return uint64(i)
	case i >= overflowBucket:
		return ^uint64(0)
	}
	shift := i>>subBits - 1
	low := uint64(subCount+i&(subCount-1)) << shift
	return low + 1<<shift - 1
}

// bucketLow returns the smallest value counted by bucket i.
func bucketLow(i int) uint64 {
	switch {
	case i < 2*subCount:
		return uint64(i)
	case i >= overflowBucket:
		return maxTrackable + 1
	}
	shift := i>>subBits - 1
	return uint64(subCount+i&(subCount-1)) << shift
}
