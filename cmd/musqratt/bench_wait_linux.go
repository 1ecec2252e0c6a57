package main

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readWait reads one datagram into buf, waiting at most d for it with ppoll(2) on the
// calling thread: the wait blocks this thread in the kernel, which wakes it when the
// datagram arrives, instead of parking the goroutine in Go's network poller.
//
// The paced publisher must not use the poller (docs/performance.md, "Where the QoS 1/2
// tails come from"): when the poller's thread wakes a goroutine locked to another thread,
// it hands that goroutine its P and sleeps, and nothing polls the network again until a
// goroutine parks. The publisher's reads then usually find their acknowledgement already
// queued and it sleeps in nanosleep, so it never parks, and the subscriber's deliveries
// waited for sysmon's forced poll (10 ms after the last one) at the bench's one QoS 1/2
// flow at a time.
func (s *snConn) readWait(d time.Duration) (int, error) {
	var n int
	var rerr error
	var pfd [1]unix.PollFd
	end := monoNow() + int64(d)
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			m, e := syscall.Read(int(fd), s.buf) // the socket is non-blocking
			if e == nil {
				n = m
				return true
			}
			if e != syscall.EAGAIN && e != syscall.EINTR {
				rerr = e
				return true
			}
			left := end - monoNow()
			if left <= 0 {
				rerr = os.ErrDeadlineExceeded
				return true
			}
			pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			ts := unix.NsecToTimespec(left)
			if _, e := unix.Ppoll(pfd[:], &ts, nil); e != nil && e != unix.EINTR {
				rerr = e
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}
