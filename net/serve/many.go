package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// buffersPerConn is how many datagrams a connection's reader may hold ahead of the
// engine goroutine.
const buffersPerConn = 8

// maxRoutes bounds the peer → connection map; past it the map is cleared, and peers
// fall back to the first connection of their address family until heard from again.
const maxRoutes = 1 << 16

// inbound is a datagram read by a connection's reader, on its way to the engine.
type inbound struct {
	c    *conn
	free chan []byte // where buf goes back
	buf  []byte
	n    int
	from netip.AddrPort
	mark uint64
}

// runMany serves several connections: one reader goroutine per connection reads into
// a small ring of buffers and hands datagrams to this goroutine, which alone runs the
// engine. Replies go out on the connection the peer was last heard on.
func (s *Server) runMany(ctx context.Context) error {
	in := make(chan inbound, buffersPerConn*len(s.conns))
	fatal := make(chan error, len(s.conns))
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, c := range s.conns {
		if err := c.pc.SetReadDeadline(time.Time{}); err != nil {
			return fmt.Errorf("serve: set read deadline: %w", err)
		}
	}
	// Cancelling (on return, too) interrupts every reader's blocked read; wg.Wait, the
	// first deferred, runs after cancel, so no reader outlives Run.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range s.conns {
		context.AfterFunc(ctx, func() { c.pc.SetReadDeadline(aLongTimeAgo) })
		free := make(chan []byte, buffersPerConn)
		for range buffersPerConn {
			free <- make([]byte, s.max+1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.reader(ctx, c, free, in, fatal)
		}()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var cur time.Time
	armed := false
	for {
		if dl := s.deadline(); !armed || !dl.Equal(cur) {
			if dl.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(dl))
			}
			cur, armed = dl, true
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case p := <-in:
			if len(s.route) >= maxRoutes {
				clear(s.route)
			}
			s.route[p.from] = p.c
			s.receive(time.Now(), p.from, p.buf[:p.n], p.mark)
			p.free <- p.buf
		case <-timer.C:
			armed = false
			s.tick(time.Now())
		case <-s.wake:
			s.tick(time.Now())
		}
	}
}

// reader reads c until ctx is cancelled or c is closed.
func (s *Server) reader(ctx context.Context, c *conn, free chan []byte, in chan<- inbound, fatal chan<- error) {
	var backoff time.Duration
	for {
		var buf []byte
		select {
		case <-ctx.Done():
			return
		case buf = <-free:
		}
		n, from, oversized, err := c.read(buf)
		if err != nil {
			free <- buf
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				fatal <- fmt.Errorf("serve: read %v: %w", c.pc.LocalAddr(), err)
				return
			}
			if !isTimeout(err) {
				s.readError(err)
			}
			backoff = nextBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
			continue
		}
		backoff = 0
		mark := s.clock.Now()
		switch {
		case oversized:
			s.dropOversized(n, from)
			free <- buf
		case !from.IsValid():
			s.unaddressable()
			free <- buf
		default:
			select {
			case in <- inbound{c: c, free: free, buf: buf, n: n, from: from, mark: mark}:
			case <-ctx.Done():
				return
			}
		}
	}
}
