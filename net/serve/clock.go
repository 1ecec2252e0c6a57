package serve

import "time"

// Clock is a free-running tick counter: Now returns ticks, Freq ticks per second.
//
// It has the same method set as latency.Clock, so any latency clock (a CPU cycle
// counter on a board, the monotonic clock on a host) can be passed as an Options.Clock.
type Clock interface {
	Now() uint64
	Freq() uint64
}

// monoClock counts nanoseconds of the monotonic clock since it was created, plus one so
// that a stamp is never zero (a zero Mark means "no input caused this").
type monoClock struct{ start time.Time }

func newMonoClock() monoClock { return monoClock{start: time.Now()} }

func (c monoClock) Now() uint64  { return uint64(time.Since(c.start)) + 1 }
func (c monoClock) Freq() uint64 { return uint64(time.Second) }
