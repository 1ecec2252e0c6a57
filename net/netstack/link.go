package netstack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/musqratt/musqratt/board"
)

// Impairment says what a [Link] does to frames. Probabilities are in [0, 1]
// and apply to each frame independently, decided by the sending port's
// seeded generator: the same seed and the same sequence of frames sent give
// the same drops, duplicates and reorderings.
type Impairment struct {
	Loss      float64       // the frame is dropped
	Duplicate float64       // the frame is delivered twice
	Reorder   float64       // the frame is held back by ReorderBy, so later frames overtake it
	ReorderBy time.Duration // how long a reordered frame is held; 0 means 5 ms
	Delay     time.Duration // added to every frame
	Jitter    time.Duration // uniform extra delay in [0, Jitter) per frame
}

// LinkStats counts what a [Link] did, over all its ports.
type LinkStats struct {
	Sent       uint64 // frames handed to Transmit
	Delivered  uint64 // frame copies put in a port's receive queue
	Dropped    uint64 // frames lost by impairment
	Duplicated uint64 // extra copies made by impairment
	Reordered  uint64 // frames held back by impairment
	Overflow   uint64 // copies dropped because a receive queue was full
}

// Link is an in-process Ethernet segment that behaves like a switch: a frame
// goes to the port with its destination MAC, or to every other port when
// broadcast, multicast or unknown. Each port is a [board.NIC] and a
// [board.Notifier], so stacks on a Link run the same glue a board does.
//
// Without delay, jitter or reordering a frame is copied straight into each
// receiving port's ring of reused frame buffers, so the link allocates nothing per
// frame in steady state; a delayed copy is cloned and scheduled with a timer.
type Link struct {
	seed uint64

	mu    sync.Mutex // guards imp, ports, the ports' generators; taken before a Port's mu
	imp   Impairment
	ports []*Port

	sent, delivered, dropped, duplicated, reordered, overflow atomic.Uint64
}

// NewLink returns an empty segment whose ports draw impairment decisions
// from generators seeded by seed and the port's index.
func NewLink(seed uint64, imp Impairment) *Link {
	return &Link{seed: seed, imp: imp}
}

// SetImpairment changes what the link does to frames sent from now on (for
// example: none while stacks resolve each other, then loss).
func (l *Link) SetImpairment(imp Impairment) {
	l.mu.Lock()
	l.imp = imp
	l.mu.Unlock()
}

// Stats returns the link's counters.
func (l *Link) Stats() LinkStats {
	return LinkStats{
		Sent:       l.sent.Load(),
		Delivered:  l.delivered.Load(),
		Dropped:    l.dropped.Load(),
		Duplicated: l.duplicated.Load(),
		Reordered:  l.reordered.Load(),
		Overflow:   l.overflow.Load(),
	}
}

// portQueueLen bounds each port's receive queue, like a NIC's ring.
const portQueueLen = 1024

// NewPort attaches a port with the given MAC.
func (l *Link) NewPort(mac net.HardwareAddr) *Port {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &Port{
		link:   l,
		mac:    append(net.HardwareAddr(nil), mac...),
		rng:    rand.New(rand.NewPCG(l.seed, uint64(len(l.ports)))),
		notify: make(chan struct{}, 1),
	}
	l.ports = append(l.ports, p)
	return p
}

// Port is one station on a [Link].
type Port struct {
	link   *Link
	mac    net.HardwareAddr
	rng    *rand.Rand // guarded by link.mu
	notify chan struct{}

	mu         sync.Mutex
	ring       [portQueueLen][]byte // frame buffers, reused; a slot keeps its capacity
	head, size int                  // the oldest waiting frame and how many wait
}

var (
	_ board.NIC      = (*Port)(nil)
	_ board.Notifier = (*Port)(nil)
)

// MAC implements [board.NIC].
func (p *Port) MAC() net.HardwareAddr { return p.mac }

// Notify implements [board.Notifier].
func (p *Port) Notify() <-chan struct{} { return p.notify }

// Receive implements [board.NIC].
func (p *Port) Receive(buf []byte) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size == 0 {
		return 0, false
	}
	n := copy(buf, p.ring[p.head])
	p.head = (p.head + 1) % portQueueLen
	p.size--
	return n, true
}

// Transmit implements [board.NIC]: the frame is impaired, switched and copied
// into each receiving port's queue (so the caller may reuse it at once).
func (p *Port) Transmit(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("netstack: link: %d-octet frame, shorter than an Ethernet header", len(frame))
	}
	dst := frame[0:6]
	group := dst[0]&1 != 0

	l := p.link
	l.sent.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	known := group
	if !group {
		for _, q := range l.ports {
			if q != p && bytes.Equal(q.mac, dst) {
				known = true
				break
			}
		}
	}
	for _, q := range l.ports {
		// A known unicast goes to its port; group and unknown unicast flood.
		if q == p || (!group && known && !bytes.Equal(q.mac, dst)) {
			continue
		}
		p.switchTo(q, frame, l.imp)
	}
	return nil
}

// switchTo applies imp to one copy of frame bound for q. Called with link.mu held.
func (p *Port) switchTo(q *Port, frame []byte, imp Impairment) {
	l := p.link
	if imp.Loss > 0 && p.rng.Float64() < imp.Loss {
		l.dropped.Add(1)
		return
	}
	copies := 1
	if imp.Duplicate > 0 && p.rng.Float64() < imp.Duplicate {
		copies = 2
		l.duplicated.Add(1)
	}
	for range copies {
		d := imp.Delay
		if imp.Jitter > 0 {
			d += time.Duration(p.rng.Int64N(int64(imp.Jitter)))
		}
		if imp.Reorder > 0 && p.rng.Float64() < imp.Reorder {
			by := imp.ReorderBy
			if by == 0 {
				by = 5 * time.Millisecond
			}
			d += by
			l.reordered.Add(1)
		}
		if d == 0 {
			q.deliver(frame)
			continue
		}
		f := bytes.Clone(frame)
		time.AfterFunc(d, func() { q.deliver(f) })
	}
}

// deliver copies f into the next free slot of p's ring, or counts an overflow.
func (p *Port) deliver(f []byte) {
	p.mu.Lock()
	full := p.size >= portQueueLen
	if !full {
		i := (p.head + p.size) % portQueueLen
		p.ring[i] = append(p.ring[i][:0], f...)
		p.size++
	}
	p.mu.Unlock()

	if full {
		p.link.overflow.Add(1)
		return
	}
	p.link.delivered.Add(1)
	select {
	case p.notify <- struct{}{}:
	default:
	}
}
