package brokertest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// Direction says which way a datagram travels.
type Direction uint8

const (
	ToBroker Direction = iota // client → broker
	ToClient                  // broker → client
)

func (d Direction) String() string {
	if d == ToBroker {
		return "to-broker"
	}
	return "to-client"
}

// Verdict is what the network does with one datagram.
type Verdict uint8

const (
	Deliver   Verdict = iota
	Drop              // lost
	Duplicate         // delivered twice
	Delay             // reordered: held back until after the next datagram is delivered
)

func (v Verdict) String() string {
	return [...]string{"deliver", "drop", "duplicate", "delay"}[v]
}

// Impairment is random misbehaviour of the network, drawn per datagram from the Net's
// seeded source: each datagram is lost with probability Loss, else duplicated with
// probability Duplicate, else delayed past the next datagram with probability Reorder.
type Impairment struct {
	Loss, Duplicate, Reorder float64
}

// Fault is a deterministic impairment: the next Count datagrams of type Type travelling
// in direction Dir to or from Client (any client if nil) get Verdict. Fired counts how
// many it has hit, so a test can check its fault was really exercised.
type Fault struct {
	Dir     Direction
	Client  *Client
	Type    packet.Type
	Verdict Verdict
	Count   int
	Fired   int
	Hit     packet.Packet // the last datagram it hit, decoded
}

// Record is one datagram as the network saw it, in order.
type Record struct {
	At      time.Time
	Dir     Direction
	Client  *Client // nil for a broadcast
	B       []byte  // the datagram (owned)
	Mark    uint64  // the Datagram.Mark it carried
	Verdict Verdict
	Tick    bool // emitted by Tick rather than by Receive
}

// Net is a simulated datagram network around one Broker. It is not safe for concurrent use.
type Net struct {
	TB     testing.TB
	Broker *broker.Broker
	Config broker.Config // as given to New
	Clock  *Clock

	// Impair is random impairment applied to every datagram both ways (after Faults).
	Impair Impairment
	// Filter, if set, decides the fate of each datagram not already decided by a Fault.
	Filter func(dir Direction, c *Client, p *packet.Packet) Verdict

	// ClientRetry and ClientMaxRetries are T_RETRY and N_RETRY of Auto clients.
	ClientRetry      time.Duration
	ClientMaxRetries int

	// Broadcasts holds every broadcast (ADVERTISE) the broker sent.
	Broadcasts []Received
	// Log holds every datagram, if KeepLog is set.
	Log     []Record
	KeepLog bool

	clients []*Client
	byKey   map[peerKey]*Client
	rng     *rand.Rand
	faults  []*Fault
	queue   []transit
	held    []transit
	out     []broker.Datagram
	mark    uint64
	ticking bool
}

type peerKey struct {
	addr netip.AddrPort
	node string
}

type transit struct {
	dir  Direction
	c    *Client
	b    []byte
	mark uint64
}

// New returns a network around a broker made with cfg, its clock at Start. It fails tb
// if cfg does not validate.
func New(tb testing.TB, cfg broker.Config) *Net {
	tb.Helper()
	b, err := broker.New(cfg)
	if err != nil {
		tb.Fatalf("brokertest: broker.New: %v", err)
	}
	return &Net{
		TB:               tb,
		Broker:           b,
		Config:           cfg,
		Clock:            NewClock(Start),
		ClientRetry:      10 * time.Second,
		ClientMaxRetries: 5,
		byKey:            make(map[peerKey]*Client),
		rng:              rand.New(rand.NewPCG(1, 2)),
	}
}

// Seed reseeds the source of random impairment.
func (n *Net) Seed(seed uint64) { n.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// Now is the network's virtual time.
func (n *Net) Now() time.Time { return n.Clock.Now() }

// Stats is the broker's Stats.
func (n *Net) Stats() broker.Stats { return n.Broker.Stats() }

// Clients returns the clients in the order they were added.
func (n *Net) Clients() []*Client { return n.clients }

// NewClient adds a client at addr ("10.0.0.1:1000", "[2001:db8::1]:1000").
func (n *Net) NewClient(name, addr string) *Client {
	return n.addClient(&Client{Name: name, Addr: netip.MustParseAddrPort(addr)})
}

// NewForwardedClient adds a client whose datagrams reach the broker through a forwarder
// at fwdAddr, wrapped in ENCAPSULATED messages carrying its wireless node id.
func (n *Net) NewForwardedClient(name, fwdAddr string, node []byte) *Client {
	return n.addClient(&Client{Name: name, Addr: netip.MustParseAddrPort(fwdAddr), Node: append([]byte{}, node...), Radius: 1})
}

func (n *Net) addClient(c *Client) *Client {
	k := c.key()
	if old := n.byKey[k]; old != nil {
		n.TB.Fatalf("brokertest: client %s: address %v node %x already belongs to %s", c.Name, c.Addr, c.Node, old.Name)
	}
	c.n = n
	c.Topics = make(map[uint16]string)
	n.byKey[k] = c
	n.clients = append(n.clients, c)
	return c
}

// AddFault arms a deterministic impairment and returns it (see Fault).
func (n *Net) AddFault(f Fault) *Fault {
	if f.Count == 0 {
		f.Count = 1
	}
	p := &f
	n.faults = append(n.faults, p)
	return p
}

// DropNext loses the next datagram of type t travelling in dir for c (any client if nil).
func (n *Net) DropNext(dir Direction, c *Client, t packet.Type) *Fault {
	return n.AddFault(Fault{Dir: dir, Client: c, Type: t, Verdict: Drop})
}

// DupNext duplicates the next datagram of type t travelling in dir for c.
func (n *Net) DupNext(dir Direction, c *Client, t packet.Type) *Fault {
	return n.AddFault(Fault{Dir: dir, Client: c, Type: t, Verdict: Duplicate})
}

// verdict decides the fate of one datagram.
func (n *Net) verdict(dir Direction, c *Client, b []byte) Verdict {
	var p packet.Packet
	decoded := packet.Decode(b, &p) == nil
	if decoded {
		for _, f := range n.faults {
			if f.Fired < f.Count && f.Dir == dir && f.Type == p.Type && (f.Client == nil || f.Client == c) {
				f.Fired++
				f.Hit = p
				return f.Verdict
			}
		}
		if n.Filter != nil {
			if v := n.Filter(dir, c, &p); v != Deliver {
				return v
			}
		}
	}
	im := n.Impair
	if im.Loss == 0 && im.Duplicate == 0 && im.Reorder == 0 {
		return Deliver
	}
	switch r := n.rng.Float64(); {
	case r < im.Loss:
		return Drop
	case r < im.Loss+im.Duplicate:
		return Duplicate
	case r < im.Loss+im.Duplicate+im.Reorder:
		return Delay
	}
	return Deliver
}

// transmit puts one datagram on the wire, subject to faults and impairment.
func (n *Net) transmit(dir Direction, c *Client, b []byte, mark uint64) {
	v := n.verdict(dir, c, b)
	if n.KeepLog {
		n.Log = append(n.Log, Record{At: n.Now(), Dir: dir, Client: c, B: b, Mark: mark, Verdict: v, Tick: n.ticking})
	}
	t := transit{dir: dir, c: c, b: b, mark: mark}
	switch v {
	case Drop:
	case Duplicate:
		n.queue = append(n.queue, t, t)
	case Delay:
		n.held = append(n.held, t)
	default:
		n.queue = append(n.queue, t)
	}
}

// Run delivers everything in flight, and whatever that provokes, until the network is
// quiet. Client methods that send call it themselves.
func (n *Net) Run() {
	n.TB.Helper()
	for steps := 0; len(n.queue) > 0 || len(n.held) > 0; steps++ {
		if steps > 1_000_000 {
			n.TB.Fatalf("brokertest: the network never went quiet (a datagram storm?)")
		}
		if len(n.queue) == 0 {
			n.queue, n.held = append(n.queue, n.held...), n.held[:0]
		}
		t := n.queue[0]
		n.queue = n.queue[1:]
		n.deliver(t)
		// A delayed datagram goes after the one delivered in its place.
		if len(n.held) > 0 {
			n.queue, n.held = append(n.queue, n.held...), n.held[:0]
		}
	}
}

func (n *Net) deliver(t transit) {
	n.TB.Helper()
	if t.dir == ToClient {
		t.c.receive(t.b, t.mark)
		return
	}
	n.mark++
	t.c.BytesSent += len(t.b)
	out := n.Broker.Receive(n.Now(), broker.Datagram{Addr: t.c.Addr, B: t.b, Mark: n.mark}, n.out[:0])
	n.route(out)
	n.out = out[:0]
}

// route takes what the broker emitted: every datagram must decode and be addressed to a
// client of this network (encapsulated for its node when it has one) or be a broadcast.
func (n *Net) route(out []broker.Datagram) {
	n.TB.Helper()
	for _, d := range out {
		b := append([]byte(nil), d.B...) // the broker reuses its buffers
		var p packet.Packet
		if err := packet.Decode(b, &p); err != nil {
			n.TB.Errorf("brokertest: broker sent a malformed datagram to %v: %x: %v", d.Addr, b, err)
			continue
		}
		if d.IsBroadcast() {
			if p.Type != packet.ADVERTISE {
				n.TB.Errorf("brokertest: broker broadcast %s; only ADVERTISE is broadcast", Describe(&p))
			}
			n.Broadcasts = append(n.Broadcasts, Received{At: n.Now(), Packet: p, Raw: b, Mark: d.Mark})
			if n.KeepLog {
				n.Log = append(n.Log, Record{At: n.Now(), Dir: ToClient, B: b, Mark: d.Mark, Tick: n.ticking})
			}
			for _, c := range n.clients {
				if c.HearBroadcasts {
					n.transmit(ToClient, c, b, d.Mark)
				}
			}
			continue
		}
		k := peerKey{addr: d.Addr}
		if p.Encapsulated {
			k.node = string(p.NodeID)
		}
		c := n.byKey[k]
		if c == nil {
			n.TB.Errorf("brokertest: broker sent %s to %v node %x, which no client owns", Describe(&p), d.Addr, p.NodeID)
			continue
		}
		n.transmit(ToClient, c, b, d.Mark)
	}
}

// NextDeadline is the earliest of the broker's Deadline and the Auto clients' timers, or
// the zero Time when nothing is pending.
func (n *Net) NextDeadline() time.Time {
	d := n.Broker.Deadline()
	for _, c := range n.clients {
		if t := c.nextDeadline(); !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Advance moves virtual time forward by d, running every timer that falls due on the way
// at the instant it is due (never sleeping).
func (n *Net) Advance(d time.Duration) {
	n.TB.Helper()
	n.AdvanceTo(n.Now().Add(d))
}

// AdvanceTo moves virtual time to t (see Advance).
func (n *Net) AdvanceTo(t time.Time) {
	n.TB.Helper()
	n.Run()
	same := 0
	for {
		next := n.NextDeadline()
		if next.IsZero() || next.After(t) {
			break
		}
		if next.After(n.Now()) {
			n.Clock.Set(next)
			same = 0
		} else if same++; same > 1000 {
			n.TB.Fatalf("brokertest: Deadline stays at %v (now %v) after 1000 Ticks", next, n.Now())
		}
		n.Tick()
	}
	if t.After(n.Now()) {
		n.Clock.Set(t)
	}
}

// Tick runs the broker's and the clients' timers at the current instant, then delivers
// what they sent.
func (n *Net) Tick() {
	n.TB.Helper()
	n.ticking = true
	out := n.Broker.Tick(n.Now(), n.out[:0])
	n.route(out)
	n.out = out[:0]
	for _, c := range n.clients {
		c.tick(n.Now())
	}
	n.ticking = false
	n.Run()
}

// CheckQuiescent fails the test if the broker still holds deliveries for anyone: inflight,
// queued or sleep-buffered messages.
func (n *Net) CheckQuiescent(tb testing.TB) {
	tb.Helper()
	s := n.Stats()
	if s.Inflight != 0 || s.Queued != 0 || s.SleepBuffered != 0 {
		tb.Errorf("broker not quiescent: inflight=%d queued=%d sleep-buffered=%d", s.Inflight, s.Queued, s.SleepBuffered)
	}
}

// CheckEmpty fails the test unless every gauge of the broker is back to zero except
// Topics and Retained, which outlive clients: no session, subscription or message is left.
func (n *Net) CheckEmpty(tb testing.TB) {
	tb.Helper()
	s := n.Stats()
	var sessions int64
	for _, v := range s.ClientsByState {
		sessions += v
	}
	if sessions != 0 || s.Subscriptions != 0 || s.Inflight != 0 || s.Queued != 0 || s.SleepBuffered != 0 {
		tb.Errorf("broker state leaked: clients by state %v, subscriptions=%d inflight=%d queued=%d sleep-buffered=%d",
			s.ClientsByState, s.Subscriptions, s.Inflight, s.Queued, s.SleepBuffered)
	}
}

// String describes the network's clients, for failure messages.
func (n *Net) String() string {
	s := fmt.Sprintf("net at %v:", Since(n.Now()))
	for _, c := range n.clients {
		s += " " + c.String()
	}
	return s
}
