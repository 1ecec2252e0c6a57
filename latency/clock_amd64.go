package latency

import (
	"fmt"
	"time"
)

// Implemented in clock_amd64.s.
func rdtsc() uint64
func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// TSC returns the x86 time-stamp counter as a Clock of freq ticks per second, for a
// caller that already knows the frequency (a board that calibrated it against the
// PIT, or read CPUID leaf 0x15). It panics if freq is 0.
//
// Reading it costs an LFENCE and an RDTSC, a few nanoseconds, with no system call
// even where the vDSO is unavailable.
func TSC(freq uint64) Clock {
	if freq == 0 {
		panic("latency: TSC: frequency 0")
	}
	return counterClock{read: rdtsc, freq: freq}
}

// CalibratedTSC returns the time-stamp counter with its frequency measured against
// the monotonic clock over window (20 ms if window <= 0); it sleeps that long.
// A longer window gives a closer frequency: the error is about the cost of one
// clock read divided by window (well under 10 ppm at 20 ms).
//
// Why calibrate rather than trust the CPU: under emulation (QEMU TCG) the reported
// frequency is wrong. Under GOOS=tamago the monotonic clock is itself derived from
// the TSC and the runtime's idea of its frequency, so calibration there reproduces
// that idea: a board that knows better should use TSC(freq).
//
// It panics if the counter does not advance during window.
func CalibratedTSC(window time.Duration) Clock {
	f := calibrate(rdtsc, window)
	if f == 0 {
		panic("latency: CalibratedTSC: the TSC did not advance during calibration")
	}
	return TSC(f)
}

// CPUCounter returns the CPU's own free-running counter. On amd64 that is the TSC,
// calibrated over window, and only if CPUID advertises it as invariant (constant
// rate in every power state), since otherwise ticks are not time; else the error
// wraps ErrNoCounter. It does not detect TSCs unsynchronised across sockets: use it
// where that is known not to happen, and Monotonic otherwise.
func CPUCounter(window time.Duration) (Clock, error) {
	if !invariantTSC() {
		return nil, fmt.Errorf("%w: TSC not advertised invariant (CPUID 0x80000007 EDX bit 8 clear)", ErrNoCounter)
	}
	f := calibrate(rdtsc, window)
	if f == 0 {
		return nil, fmt.Errorf("%w: TSC did not advance during calibration", ErrNoCounter)
	}
	return TSC(f), nil
}

// invariantTSC reports CPUID.80000007H:EDX[8], "invariant TSC".
func invariantTSC() bool {
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt < 0x80000007 {
		return false
	}
	_, _, _, d := cpuid(0x80000007, 0)
	return d&(1<<8) != 0
}
