package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// errNoFamily is a send to an address family no socket of the server reaches.
var errNoFamily = fmt.Errorf("no socket reaches this address family: %w", ErrNoRoute)

// maxRoutes bounds the peer → socket map of a joined Bind; past it the map is
// cleared, and peers fall back to the first socket of their address family until
// heard from again.
const maxRoutes = 1 << 16

// joinedDepth is how many datagrams each socket's reader may hold ahead of the loop.
const joinedDepth = 64

// joined serves several Binds (one per listen address) as one: a reader goroutine per
// Bind receives batches into its own buffers, and ReceiveBatch copies them out in
// arrival order; a datagram is sent on the Bind its peer was last heard on, else the
// first that reaches the peer's family. The copy is the price of several sockets; a
// server with one socket (the hosted default, the image) reads it directly.
type joined struct {
	subs []Bind
	max  int // buffer size of the readers

	in    chan *joinedPacket
	fatal chan error

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // capacity 1: a SetReadDeadline since ReceiveBatch looked
	timer    *time.Timer

	route map[netip.AddrPort]int // only the loop's goroutine uses it

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type joinedPacket struct {
	Packet
	sub  int
	free chan *joinedPacket
}

func join(subs []Bind, max int) *joined {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &joined{
		subs:    subs,
		max:     max,
		in:      make(chan *joinedPacket, joinedDepth*len(subs)),
		fatal:   make(chan error, len(subs)),
		changed: make(chan struct{}, 1),
		timer:   t,
		route:   make(map[netip.AddrPort]int),
	}
}

// start runs a reader per Bind until stop.
func (j *joined) start() {
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	for i, b := range j.subs {
		free := make(chan *joinedPacket, joinedDepth)
		for range joinedDepth {
			free <- &joinedPacket{Packet: Packet{Buf: make([]byte, j.max)}, sub: i, free: free}
		}
		if err := b.SetReadDeadline(time.Time{}); err != nil {
			j.fatal <- fmt.Errorf("serve: set read deadline on %v: %w", b, err)
			continue
		}
		context.AfterFunc(ctx, func() { b.SetReadDeadline(aLongTimeAgo) })
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			j.reader(ctx, b, free)
		}()
	}
}

// stop ends the readers and waits for them.
func (j *joined) stop() {
	if j.cancel != nil {
		j.cancel()
	}
	j.wg.Wait()
}

func (j *joined) reader(ctx context.Context, b Bind, free chan *joinedPacket) {
	batch := make([]*joinedPacket, b.BatchSize())
	pkts := make([]Packet, b.BatchSize())
	var backoff time.Duration
	for {
		// Take as many free buffers as are there (at least one, waiting for it).
		k := 0
		for k < len(batch) {
			var p *joinedPacket
			if k == 0 {
				select {
				case <-ctx.Done():
					return
				case p = <-free:
				}
			} else {
				select {
				case p = <-free:
				default:
				}
				if p == nil {
					break
				}
			}
			batch[k] = p
			pkts[k] = Packet{Buf: p.Buf[:cap(p.Buf)]}
			k++
		}
		n, err := b.ReceiveBatch(pkts[:k])
		for i := range k {
			if i < n {
				batch[i].Packet = pkts[i]
				select {
				case j.in <- batch[i]:
				case <-ctx.Done():
					return
				}
			} else {
				free <- batch[i]
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				j.report(ctx, fmt.Errorf("serve: read %v: %w", b, err))
				return
			}
			if !isTimeout(err) {
				j.report(ctx, readFailure{err})
			}
			backoff = nextBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
			continue
		}
		backoff = 0
	}
}

// report hands a reader's error to the loop, unless the Server is stopping.
func (j *joined) report(ctx context.Context, err error) {
	select {
	case j.fatal <- err:
	case <-ctx.Done():
	}
}

// readFailure carries a reader's non-fatal read error to ReceiveBatch, which reports
// it to the loop (counted there) instead of failing the Server.
type readFailure struct{ error }

func (j *joined) ReceiveBatch(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	for {
		j.mu.Lock()
		dl := j.deadline
		j.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			j.timer.Reset(d)
			expired = j.timer.C
		}
		select {
		case p := <-j.in:
			j.timer.Stop()
			n := j.take(pkts, p)
			for n < len(pkts) {
				select {
				case p := <-j.in:
					n += j.take(pkts[n:], p)
					continue
				default:
				}
				break
			}
			return n, nil
		case err := <-j.fatal:
			j.timer.Stop()
			if rf, ok := err.(readFailure); ok {
				return 0, rf.error
			}
			return 0, err
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		case <-j.changed:
			j.timer.Stop()
		}
	}
}

// take copies p into pkts[0], notes the peer's socket, and recycles p's buffer.
func (j *joined) take(pkts []Packet, p *joinedPacket) int {
	q := &pkts[0]
	n := copy(q.Buf, p.Buf[:p.N])
	q.N, q.Addr, q.Trunc = n, p.Addr, p.Trunc || n < p.N
	if q.Addr.IsValid() {
		if len(j.route) >= maxRoutes {
			clear(j.route)
		}
		j.route[q.Addr] = p.sub
	}
	p.free <- p
	return 1
}

func (j *joined) SetReadDeadline(t time.Time) error {
	j.mu.Lock()
	j.deadline = t
	j.mu.Unlock()
	select {
	case j.changed <- struct{}{}:
	default:
	}
	return nil
}

// SendBatch sends each datagram on its peer's socket.
func (j *joined) SendBatch(pkts []Packet) (int, error) {
	for i := range pkts {
		b := j.bindFor(pkts[i].Addr)
		if b == nil {
			return i, errNoFamily
		}
		if n, err := b.SendBatch(pkts[i : i+1]); n != 1 {
			return i, err
		}
	}
	return len(pkts), nil
}

// bindFor picks the socket to send to a peer: the one it was last heard on, else the
// first that reaches its address family.
func (j *joined) bindFor(to netip.AddrPort) Bind {
	if i, ok := j.route[to]; ok {
		return j.subs[i]
	}
	for _, b := range j.subs {
		if b.Reaches(to.Addr()) {
			return b
		}
	}
	return nil
}

func (j *joined) Reaches(a netip.Addr) bool {
	for _, b := range j.subs {
		if b.Reaches(a) {
			return true
		}
	}
	return false
}

func (j *joined) BatchSize() int { return joinedDepth }

func (j *joined) String() string {
	s := ""
	for i, b := range j.subs {
		if i > 0 {
			s += ","
		}
		s += b.String()
	}
	return s
}
