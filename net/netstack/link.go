package netstack

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
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
type Link struct {
	seed uint64

	mu    sync.Mutex
	imp   Impairment
	ports []*Port
	stats LinkStats
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
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
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

	mu    sync.Mutex
	queue [][]byte
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
	if len(p.queue) == 0 {
		return 0, false
	}
	f := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	return copy(buf, f), true
}

// Transmit implements [board.NIC]: the frame is copied, impaired and
// switched.
func (p *Port) Transmit(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("netstack: link: %d-octet frame, shorter than an Ethernet header", len(frame))
	}
	f := bytes.Clone(frame)
	dst := net.HardwareAddr(f[0:6])

	l := p.link
	l.mu.Lock()
	l.stats.Sent++
	imp := l.imp
	var targets []*Port
	for _, q := range l.ports {
		if q != p && (dst[0]&1 != 0 || bytes.Equal(q.mac, dst)) {
			targets = append(targets, q)
		}
	}
	if len(targets) == 0 && dst[0]&1 == 0 { // unknown unicast: flood
		for _, q := range l.ports {
			if q != p {
				targets = append(targets, q)
			}
		}
	}
	type plan struct {
		to    *Port
		delay time.Duration
	}
	var plans []plan
	for _, q := range targets {
		if imp.Loss > 0 && p.rng.Float64() < imp.Loss {
			l.stats.Dropped++
			continue
		}
		copies := 1
		if imp.Duplicate > 0 && p.rng.Float64() < imp.Duplicate {
			copies = 2
			l.stats.Duplicated++
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
				l.stats.Reordered++
			}
			plans = append(plans, plan{q, d})
		}
	}
	l.mu.Unlock()

	for _, pl := range plans {
		if pl.delay == 0 {
			pl.to.deliver(f)
			continue
		}
		to := pl.to
		time.AfterFunc(pl.delay, func() { to.deliver(f) })
	}
	return nil
}

func (p *Port) deliver(f []byte) {
	p.mu.Lock()
	full := len(p.queue) >= portQueueLen
	if !full {
		p.queue = append(p.queue, f)
	}
	p.mu.Unlock()

	p.link.mu.Lock()
	if full {
		p.link.stats.Overflow++
	} else {
		p.link.stats.Delivered++
	}
	p.link.mu.Unlock()

	select {
	case p.notify <- struct{}{}:
	default:
	}
}
