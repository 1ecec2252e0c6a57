package netstack

import (
	"sync"
	"sync/atomic"
	"time"
)

// readDeadline is a read deadline that a blocked reader selects on, settable from
// any goroutine, with one timer for its whole life: setting it does not allocate,
// as the driver loop sets it before every blocking receive.
//
// Expiry is a flag plus a token in a one-slot channel, not a closed channel, so
// that re-arming after an expiry needs no new channel. A stale token (left from an
// expiry that a later set cancelled) only wakes the reader, which checks the flag.
type readDeadline struct {
	mu    sync.Mutex
	when  time.Time   // zero: none; guarded by mu
	timer *time.Timer // fires fire; created on first use

	expired atomic.Bool
	c       chan struct{} // one token per expiry
}

func newReadDeadline() *readDeadline {
	return &readDeadline{c: make(chan struct{}, 1)}
}

// set arms the deadline at t; the zero Time disarms it, a past one expires it now.
func (d *readDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if d.timer != nil {
		d.timer.Stop() // a run already under way finds when changed and does nothing
	}
	d.expired.Store(false)
	select {
	case <-d.c:
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.expireLocked()
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
		return
	}
	d.timer.Reset(wait)
}

func (d *readDeadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.when.IsZero() || time.Now().Before(d.when) {
		return // disarmed or moved later since this run was scheduled
	}
	d.expireLocked()
}

func (d *readDeadline) expireLocked() {
	d.expired.Store(true)
	select {
	case d.c <- struct{}{}:
	default:
	}
}

// stop releases the timer.
func (d *readDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = time.Time{}
	if d.timer != nil {
		d.timer.Stop()
	}
}
