package brokertest

import "time"

// Start is the virtual time at which a Net begins: a fixed, arbitrary instant, so
// transcripts do not depend on the wall clock.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a fake clock. It moves only when told to.
type Clock struct {
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's reading.
func (c *Clock) Now() time.Time { return c.now }

// Set moves the clock to t. Moving it backwards panics: the engine assumes monotonic time.
func (c *Clock) Set(t time.Time) {
	if t.Before(c.now) {
		panic("brokertest: clock moved backwards from " + c.now.String() + " to " + t.String())
	}
	c.now = t
}

// Advance moves the clock forward by d and returns the new reading.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.Set(c.now.Add(d))
	return c.now
}

// Since returns how long after Start t is, the form transcripts print.
func Since(t time.Time) time.Duration { return t.Sub(Start) }
