package main

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d with nanosleep(2) on the calling (locked) thread: the runtime's
// timers may wake a goroutine up to a millisecond late, nanosleep typically within
// tens of microseconds.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
