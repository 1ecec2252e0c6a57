//go:build !linux

package main

import "time"

// readWait reads one datagram into buf, waiting at most d for it; elsewhere than Linux,
// through Go's network poller (the Linux version says why it avoids it).
func (s *snConn) readWait(d time.Duration) (int, error) {
	if err := s.c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	defer s.c.SetReadDeadline(time.Time{})
	return s.c.Read(s.buf)
}
