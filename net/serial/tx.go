package serial

import (
	"sync"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// txQueue is the transmit side: a ring of octets that SendBatch copies whole
// datagrams into and the writer goroutine drains to the line. A datagram enters the
// ring whole or not at all, so the line never carries part of a frame because of a
// full queue.
type txQueue struct {
	mu     sync.Mutex
	buf    []byte
	r, n   int // buf[r:r+n] (mod len) is queued
	closed bool

	frames, octets, full, errors uint64

	data  chan struct{} // capacity 1: octets queued (to the writer)
	space chan struct{} // capacity 1: octets written (to SendBatch)
}

// put queues p whole if there is room and reports whether it did; closed reports
// the Bind is closed.
func (q *txQueue) put(p []byte) (ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, true
	}
	if len(q.buf)-q.n < len(p) {
		return false, false
	}
	w := (q.r + q.n) % len(q.buf)
	k := copy(q.buf[w:], p)
	copy(q.buf, p[k:])
	q.n += len(p)
	q.frames++
	return true, false
}

// SendBatch implements [serve.Bind]: each datagram, which must be to the line's
// address, is queued whole for the line, waiting up to the write timeout for room.
func (b *Bind) SendBatch(pkts []serve.Packet) (int, error) {
	armed := false
	defer func() {
		if armed {
			b.sendTimer.Stop()
		}
	}()
	for i := range pkts {
		p := &pkts[i]
		if p.Addr != b.addr {
			return i, b.errNoRoute
		}
		if len(p.Buf) > len(b.tx.buf) {
			return i, b.errTooLong
		}
		for {
			ok, closed := b.tx.put(p.Buf)
			if closed {
				return i, b.errClosed
			}
			if ok {
				notify(b.tx.data)
				break
			}
			if !armed {
				b.sendTimer.Reset(b.wto)
				armed = true
			}
			select {
			case <-b.tx.space:
			case <-b.done:
			case <-b.sendTimer.C:
				b.tx.mu.Lock()
				b.tx.full++
				b.tx.mu.Unlock()
				armed = false
				return i, b.errTxFull
			}
		}
	}
	return len(pkts), nil
}

// writer writes what is queued to the line, continuing partial writes, until Close.
func (b *Bind) writer() {
	defer b.wg.Done()
	q := &b.tx
	for {
		q.mu.Lock()
		chunk := q.buf[q.r:min(q.r+q.n, len(q.buf))]
		q.mu.Unlock()
		if len(chunk) == 0 {
			select {
			case <-q.data:
				continue
			case <-b.done:
				return
			}
		}
		// SendBatch writes only outside buf[r:r+n], so chunk is ours until r moves.
		k, err := b.rw.Write(chunk)
		q.mu.Lock()
		q.r = (q.r + k) % len(q.buf)
		q.n -= k
		q.octets += uint64(k)
		if err != nil && !q.closed {
			q.errors++
			q.r, q.n = 0, 0 // what is queued would start mid-frame after the failure
		}
		closed := q.closed
		q.mu.Unlock()
		notify(q.space)
		if closed {
			return
		}
		if err != nil {
			// Do not spin on a line that keeps failing (unplugged adapter).
			select {
			case <-time.After(writeErrorPause):
			case <-b.done:
				return
			}
		}
	}
}

// writeErrorPause is how long the writer rests after a failed write.
const writeErrorPause = 100 * time.Millisecond
