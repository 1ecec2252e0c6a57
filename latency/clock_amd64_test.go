package latency

import (
	"testing"
	"time"
)

func TestCalibratedTSC(t *testing.T) {
	checkAgainstMonotonic(t, CalibratedTSC(20*time.Millisecond))
	t.Logf("TSC invariant: %v", invariantTSC())
}

func TestTSCPanicsOnZero(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("TSC(0) did not panic")
		}
	}()
	TSC(0)
}

func BenchmarkTSC(b *testing.B) {
	c := TSC(1e9) // the frequency does not change the cost of a read
	b.ReportAllocs()
	for b.Loop() {
		sink += c.Now()
	}
}
