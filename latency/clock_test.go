package latency

import (
	"errors"
	"testing"
	"time"
)

func TestMonotonic(t *testing.T) {
	c := Monotonic()
	if c.Freq() != 1e9 {
		t.Fatalf("Freq = %d, want 1e9", c.Freq())
	}
	prev := c.Now()
	if prev == 0 {
		t.Fatal("Now = 0: a zero reading would read as 'no stamp'")
	}
	for range 1000 {
		n := c.Now()
		if n < prev {
			t.Fatalf("Now went back: %d after %d", n, prev)
		}
		prev = n
	}
	a := c.Now()
	time.Sleep(2 * time.Millisecond)
	if d := Nanos(c, c.Now()-a); d < uint64(2*time.Millisecond) {
		t.Errorf("slept 2ms, clock advanced %dns", d)
	}
	if Default() == nil {
		t.Fatal("Default() = nil")
	}
}

func TestNanos(t *testing.T) {
	for _, tc := range []struct {
		freq, ticks, want uint64
	}{
		{1e9, 12345, 12345},
		{62_500_000, 1, 16},
		{62_500_000, 62_500_000, 1e9},
		{8_000_000, 3, 375},
		{3_000_000_000, 3, 1},
		{3_000_000_000, 2, 0}, // rounds down
		{3_000_000_000, 1 << 62, 1537228672809129301},
		{1, 18, 18e9},
		{1, 1 << 62, ^uint64(0)}, // saturates
		{0, 100, 0},
	} {
		c := constClock(tc.freq)
		if got := Nanos(c, tc.ticks); got != tc.want {
			t.Errorf("Nanos(freq %d, %d ticks) = %d, want %d", tc.freq, tc.ticks, got, tc.want)
		}
	}
}

// constClock is a Clock at a given frequency that always reads 1 (Func refuses
// frequency 0, which TestNanos wants to try).
type constClock uint64

func (c constClock) Now() uint64  { return 1 }
func (c constClock) Freq() uint64 { return uint64(c) }

func TestFunc(t *testing.T) {
	n := uint64(41)
	c := Func(func() uint64 { n++; return n }, 1000)
	if c.Now() != 42 || c.Now() != 43 || c.Freq() != 1000 {
		t.Fatal("Func does not pass readings and frequency through")
	}
	for name, f := range map[string]func(){
		"nil now": func() { Func(nil, 1) },
		"freq 0":  func() { Func(func() uint64 { return 0 }, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Func with %s did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestCalibrate calibrates a counter running at a known multiple of the monotonic
// clock.
func TestCalibrate(t *testing.T) {
	const want uint64 = 2_500_000_000 // 2.5 ticks per nanosecond
	counter := func() uint64 { return uint64(time.Since(base)) * 5 / 2 }
	got := calibrate(counter, 10*time.Millisecond)
	if got < want*99/100 || got > want*101/100 {
		t.Errorf("calibrate = %d Hz, want %d ±1%%", got, want)
	}
	if f := calibrate(func() uint64 { return 7 }, time.Millisecond); f != 0 {
		t.Errorf("calibrate of a stuck counter = %d, want 0", f)
	}
}

// TestCPUCounter checks the architecture's counter against the monotonic clock,
// where there is one.
func TestCPUCounter(t *testing.T) {
	c, err := CPUCounter(20 * time.Millisecond)
	if errors.Is(err, ErrNoCounter) {
		t.Skipf("no CPU counter here: %v", err)
	}
	if err != nil {
		t.Fatalf("CPUCounter: error %v does not wrap ErrNoCounter", err)
	}
	checkAgainstMonotonic(t, c)
}

// checkAgainstMonotonic measures a sleep with c and with the monotonic clock. The
// bound is loose: a busy CI machine under -race may preempt between the reads.
func checkAgainstMonotonic(t *testing.T, c Clock) {
	t.Helper()
	if f := c.Freq(); f < 1e6 || f > 20e9 {
		t.Fatalf("Freq = %d Hz, not a plausible counter frequency", f)
	}
	m := Monotonic()
	c0, m0 := c.Now(), m.Now()
	time.Sleep(30 * time.Millisecond)
	c1, m1 := c.Now(), m.Now()
	got, want := Nanos(c, c1-c0), Nanos(m, m1-m0)
	if diff := int64(got) - int64(want); diff > int64(want/20) || -diff > int64(want/20) {
		t.Errorf("counter measured %v, monotonic clock %v", time.Duration(got), time.Duration(want))
	}
}

var sink uint64

func BenchmarkNow(b *testing.B) {
	clocks := []struct {
		name string
		c    Clock
	}{
		{"Monotonic", Monotonic()},
		{"Func", Func(func() uint64 { return uint64(time.Since(base)) }, 1e9)},
	}
	if c, err := CPUCounter(10 * time.Millisecond); err == nil {
		clocks = append(clocks, struct {
			name string
			c    Clock
		}{"CPUCounter", c})
	}
	for _, tc := range clocks {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink += tc.c.Now()
			}
		})
	}
}

func BenchmarkNanos(b *testing.B) {
	for _, tc := range []struct {
		name string
		freq uint64
	}{{"1GHz", 1e9}, {"62.5MHz", 62_500_000}, {"3GHz", 2_995_200_000}} {
		b.Run(tc.name, func(b *testing.B) {
			var c Clock = constClock(tc.freq) // converted once: a conversion per call would allocate
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				sink += Nanos(c, i)
			}
		})
	}
}
