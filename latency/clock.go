package latency

import (
	"errors"
	"math/bits"
	"time"
)

// Clock is a free-running tick counter. Now returns the current count and Freq how
// many ticks make one second. Only differences between two readings of the same
// clock mean anything; convert them with Nanos.
//
// A tick counter rather than time.Time because the cheapest clock on a board is a
// CPU counter read in a few cycles, and because a stamp has to fit a uint64 (the
// driver stores it in Datagram.Mark). Every Clock here is safe for concurrent use.
type Clock interface {
	Now() uint64
	Freq() uint64
}

// ErrNoCounter is returned by CPUCounter where this package cannot read a CPU
// counter: an architecture it has no code for, or a counter the CPU does not
// provide or advertise as usable.
var ErrNoCounter = errors.New("latency: no usable CPU counter")

// Nanos converts a tick count (usually a difference of two Now readings) of c into
// nanoseconds, rounding down. It is exact for any count: the product is formed in
// 128 bits, and a result beyond uint64 saturates. A clock reporting frequency 0
// yields 0.
func Nanos(c Clock, ticks uint64) uint64 {
	return nanos(ticks, c.Freq())
}

// nanos is Nanos with the frequency already read, for callers that convert often
// (the Tracer reads its clock's frequency once).
func nanos(ticks, freq uint64) uint64 {
	switch freq {
	case uint64(time.Second):
		return ticks // the monotonic clock: the common case costs a compare
	case 0:
		return 0
	}
	hi, lo := bits.Mul64(ticks, uint64(time.Second))
	if hi >= freq {
		return ^uint64(0) // the quotient would not fit; Div64 would panic
	}
	q, _ := bits.Div64(hi, lo, freq)
	return q
}

// Default returns the clock to use when nothing better is known: Monotonic. It is
// never a raw CPU counter, because this package cannot tell on its own whether a
// counter is synchronised across cores, constant in frequency, or even readable at
// the current privilege level; a board that knows can pass its counter with Func.
func Default() Clock { return Monotonic() }

// Monotonic returns the runtime's monotonic clock in nanoseconds (Freq 1e9) since
// the package was initialised, plus one so that a reading is never zero: the driver
// uses a zero Mark to mean "no stamp".
//
// It costs what time.Since costs: one read of the runtime's nanotime (a vDSO call
// on Linux; under GOOS=tamago the board's timer, scaled by the runtime).
func Monotonic() Clock { return monotonic{} }

// base is the process-start origin of Monotonic. A package-level time.Time with a
// monotonic reading makes time.Since take its fast path (no wall clock read).
var base = time.Now()

type monotonic struct{}

func (monotonic) Now() uint64  { return uint64(time.Since(base)) + 1 }
func (monotonic) Freq() uint64 { return uint64(time.Second) }

// Func returns a Clock that calls now for each reading and reports freq ticks per
// second. It is how a board plugs in a counter this package does not know (a SoC
// timer, a cycle counter it calibrated itself). now must be safe to call from every
// goroutine that reads the clock, and must count up across the whole uint64 range:
// a board with a 32-bit counter extends it, or an interval spanning its wrap is
// lost (the Tracer skips intervals that seem to run backwards).
//
// Func panics if now is nil or freq is 0: both are wiring mistakes, better found
// at start-up than as a histogram of zeros.
func Func(now func() uint64, freq uint64) Clock {
	if now == nil {
		panic("latency: Func: nil now function")
	}
	if freq == 0 {
		panic("latency: Func: frequency 0")
	}
	return funcClock{now: now, freq: freq}
}

type funcClock struct {
	now  func() uint64
	freq uint64
}

func (c funcClock) Now() uint64  { return c.now() }
func (c funcClock) Freq() uint64 { return c.freq }

// counterClock is a CPU counter read by an assembly function, at a known frequency.
type counterClock struct {
	read func() uint64
	freq uint64
}

func (c counterClock) Now() uint64  { return c.read() }
func (c counterClock) Freq() uint64 { return c.freq }

// calibrate measures the frequency of counter against the monotonic clock over
// about window (20 ms if window <= 0). Each end is bracketed by two counter reads
// and the midpoint taken, so a preemption between the reads costs accuracy only in
// proportion to how long it lasted relative to window.
func calibrate(counter func() uint64, window time.Duration) uint64 {
	if window <= 0 {
		window = 20 * time.Millisecond
	}
	stamp := func() (ticks uint64, mono time.Duration) {
		a := counter()
		mono = time.Since(base)
		b := counter()
		return a + (b-a)/2, mono
	}
	t0, m0 := stamp()
	time.Sleep(window)
	t1, m1 := stamp()
	elapsed := uint64(m1 - m0)
	if elapsed == 0 || t1 <= t0 {
		return 0
	}
	hi, lo := bits.Mul64(t1-t0, uint64(time.Second))
	if hi >= elapsed {
		return 0
	}
	f, _ := bits.Div64(hi, lo, elapsed)
	return f
}
