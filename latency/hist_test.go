package latency

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBuckets checks the layout: buckets tile 0..MaxTrackable without gaps or
// overlaps, each at most RelativePrecision of its lower bound wide.
func TestBuckets(t *testing.T) {
	if numBuckets != 1217 {
		t.Errorf("numBuckets = %d, the layout changed (update the docs)", numBuckets)
	}
	var next uint64
	for i := range overflowBucket {
		lo, hi := bucketLow(i), bucketHigh(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if w := hi - lo + 1; lo > 0 && float64(w-1) > float64(lo)*RelativePrecision {
			t.Fatalf("bucket %d = [%d, %d] is wider than %.4f of its low end", i, lo, hi, RelativePrecision)
		}
		next = hi + 1
	}
	if next != MaxTrackable+1 {
		t.Fatalf("last bucket ends at %d, want %d", next-1, MaxTrackable)
	}
	for _, v := range []uint64{MaxTrackable + 1, 1 << 50, math.MaxUint64} {
		if b := bucketOf(v); b != overflowBucket {
			t.Errorf("bucketOf(%d) = %d, want the overflow bucket %d", v, b, overflowBucket)
		}
	}
}

// distributions are the data sets the quantile test compares with a sorted slice.
var distributions = []struct {
	name string
	gen  func(r *rand.Rand) uint64
}{
	{"small exact", func(r *rand.Rand) uint64 { return r.Uint64N(64) }},
	{"uniform 0-1ms", func(r *rand.Rand) uint64 { return r.Uint64N(1e6) }},
	{"log-uniform 1ns-2^42", func(r *rand.Rand) uint64 { return uint64(math.Exp2(r.Float64() * rangeBits)) }},
	{"exponential mean 50us", func(r *rand.Rand) uint64 { return uint64(r.ExpFloat64() * 50e3) }},
	{"bimodal 20us/3ms", func(r *rand.Rand) uint64 {
		if r.IntN(100) < 97 {
			return 20e3 + r.Uint64N(2e3)
		}
		return 3e6 + r.Uint64N(1e6)
	}},
	{"constant", func(r *rand.Rand) uint64 { return 123456789 }},
	{"beyond range", func(r *rand.Rand) uint64 { return MaxTrackable - 1e9 + r.Uint64N(1e12) }},
}

var testQuantiles = []float64{0, 1e-6, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1}

func TestQuantileVersusSorted(t *testing.T) {
	for _, d := range distributions {
		for _, n := range []int{1, 2, 3, 10, 1000, 100_000} {
			r := rand.New(rand.NewPCG(uint64(n), 7))
			var h Histogram
			vals := make([]uint64, n)
			var sum uint64
			for i := range vals {
				vals[i] = d.gen(r)
				sum += vals[i]
				h.Record(vals[i])
			}
			slices.Sort(vals)
			s := h.Snapshot()
			if s.Count() != uint64(n) || s.Min() != vals[0] || s.Max() != vals[n-1] || s.Sum() != sum {
				t.Fatalf("%s n=%d: count %d min %d max %d sum %d, want %d %d %d %d",
					d.name, n, s.Count(), s.Min(), s.Max(), s.Sum(), n, vals[0], vals[n-1], sum)
			}
			if mean := float64(sum) / float64(n); math.Abs(s.Mean()-mean) > mean*1e-9 {
				t.Errorf("%s n=%d: Mean = %g, want %g", d.name, n, s.Mean(), mean)
			}
			for _, q := range testQuantiles {
				rank := max(1, int(math.Ceil(q*float64(n)-1e-9))) // ceil(q*n), proof against float rounding
				want := vals[rank-1]
				got := s.Quantile(q)
				if got < want || got < s.Min() || got > s.Max() {
					t.Errorf("%s n=%d: Quantile(%g) = %d, below the exact %d or outside [%d, %d]",
						d.name, n, q, got, want, s.Min(), s.Max())
				}
				if want <= MaxTrackable && float64(got-want) > float64(want)*RelativePrecision {
					t.Errorf("%s n=%d: Quantile(%g) = %d, exact %d: relative error %.4f > %.4f",
						d.name, n, q, got, want, float64(got-want)/float64(want), RelativePrecision)
				}
			}
		}
	}
}

// TestQuantileRank checks the rank arithmetic where float rounding bites:
// 0.017*3000 is 51.00000000000001 in float64, but the quantile is rank 51.
func TestQuantileRank(t *testing.T) {
	var h Histogram
	for i := range 3000 {
		h.Record(1 + uint64(min(1, i/51))) // 51 ones, then twos
	}
	s := h.Snapshot()
	if got := s.Quantile(0.017); got != 1 {
		t.Errorf("Quantile(0.017) of 51 ones and 2949 twos = %d, want 1", got)
	}
	if got := s.Quantile(0.0171); got != 2 {
		t.Errorf("Quantile(0.0171) = %d, want 2", got)
	}
}

func TestEmptyAndEdges(t *testing.T) {
	var h Histogram
	s := h.Snapshot()
	if s.Count() != 0 || s.Min() != 0 || s.Max() != 0 || s.Mean() != 0 || s.Quantile(0.5) != 0 {
		t.Errorf("empty histogram: count %d min %d max %d mean %g p50 %d, want zeros",
			s.Count(), s.Min(), s.Max(), s.Mean(), s.Quantile(0.5))
	}
	h.Record(0)
	h.Record(math.MaxUint64)
	s = h.Snapshot()
	if s.Min() != 0 || s.Max() != math.MaxUint64 || s.Quantile(0.5) != 0 || s.Quantile(0.51) != math.MaxUint64 {
		t.Errorf("0 and MaxUint64: min %d max %d p50 %d p51 %d", s.Min(), s.Max(), s.Quantile(0.5), s.Quantile(0.51))
	}
	if s.Quantile(math.NaN()) != 0 || s.Quantile(-1) != 0 || s.Quantile(2) != math.MaxUint64 {
		t.Error("Quantile does not clamp q to [0, 1]")
	}
	h.Reset()
	if s := h.Snapshot(); s.Count() != 0 || s.Min() != 0 || s.Max() != 0 || s.Sum() != 0 {
		t.Errorf("after Reset: count %d min %d max %d sum %d", s.Count(), s.Min(), s.Max(), s.Sum())
	}
	h.Record(500)
	if s := h.Snapshot(); s.Min() != 500 || s.Max() != 500 {
		t.Errorf("after Reset and Record(500): min %d max %d", s.Min(), s.Max())
	}
}

// TestMerge checks that merging snapshots equals recording everything in one.
func TestMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b, all Histogram
	for i := range 5000 {
		v := uint64(r.ExpFloat64() * float64(1+i%3) * 1e4)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		all.Record(v)
	}
	var m HistSnapshot
	sa, sb := a.Snapshot(), b.Snapshot()
	m.Merge(&sa)
	empty := HistSnapshot{}
	m.Merge(&empty)
	m.Merge(&sb)
	if want := all.Snapshot(); m != want {
		t.Errorf("merged: count %d min %d max %d sum %d; recorded together: %d %d %d %d",
			m.Count(), m.Min(), m.Max(), m.Sum(), want.Count(), want.Min(), want.Max(), want.Sum())
	}
}

// TestConcurrentSnapshot records from one goroutine while another takes
// snapshots: run it with -race. Every snapshot must be self-consistent.
func TestConcurrentSnapshot(t *testing.T) {
	var h Histogram
	const n = 200_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(3, 4))
		for range n {
			h.Record(100 + r.Uint64N(1e6))
		}
	}()
	var last uint64
	for snapshots := 0; ; snapshots++ {
		select {
		case <-done:
			if s := h.Snapshot(); s.Count() != n {
				t.Fatalf("final count %d, want %d", s.Count(), n)
			}
			t.Logf("%d snapshots taken while recording", snapshots)
			return
		default:
		}
		s := h.Snapshot()
		if s.Count() < last {
			t.Fatalf("count went back from %d to %d", last, s.Count())
		}
		last = s.Count()
		if s.Count() == 0 {
			continue
		}
		// Every counted value lies within Min and Max (Record writes the extremes
		// before the bucket; Snapshot reads the buckets first).
		lo := slices.IndexFunc(s.counts[:], func(c uint64) bool { return c != 0 })
		hi := len(s.counts) - 1
		for s.counts[hi] == 0 {
			hi--
		}
		if s.Min() > bucketHigh(lo) || s.Max() < bucketLow(hi) {
			t.Fatalf("counted values in [%d, %d], but Min %d Max %d", bucketLow(lo), bucketHigh(hi), s.Min(), s.Max())
		}
		if m := s.Mean(); m < float64(s.Min()) || m > float64(s.Max()) {
			t.Fatalf("Mean %g outside [%d, %d]", m, s.Min(), s.Max())
		}
	}
}

func TestRecordAllocs(t *testing.T) {
	var h Histogram
	v := uint64(1)
	if a := testing.AllocsPerRun(1000, func() { h.Record(v); v = v*3 + 1 }); a != 0 {
		t.Errorf("Record allocates: %v per call", a)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]uint64, 1024)
	for i := range vals {
		vals[i] = uint64(r.ExpFloat64() * 50e3)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(vals[i&1023])
	}
}

func BenchmarkSnapshot(b *testing.B) {
	var h Histogram
	for i := range uint64(10000) {
		h.Record(i * 1000)
	}
	b.ReportAllocs()
	for b.Loop() {
		s := h.Snapshot()
		sink += s.Count()
	}
}

func BenchmarkQuantile(b *testing.B) {
	var h Histogram
	for i := range uint64(10000) {
		h.Record(i * 1000)
	}
	s := h.Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		sink += s.Quantile(0.99)
	}
}
