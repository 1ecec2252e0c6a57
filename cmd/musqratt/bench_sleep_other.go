//go:build !linux

package main

import "time"

// preciseSleep sleeps d; elsewhere than Linux, with the runtime's timers.
func preciseSleep(d time.Duration) { time.Sleep(d) }
