package broker

import (
	"container/heap"
	"net/netip"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// Broker is the engine. Create it with New.
type Broker struct {
	cfg Config
	c   counters

	sessions   []*session // indexed by topic.SubscriberID; nil slots are free
	freeIDs    []topic.SubscriberID
	byClientID map[string]*session
	byPeer     map[peerKey]*session
	live       int                // sessions in use, for MaxClients
	perAddr    map[netip.Addr]int // sessions bound per IP address, for MaxClientsPerAddress
	connecting int                // sessions in a will exchange, for MaxConnecting

	topics       topicTable
	subs         *topic.Index
	retained     map[string]*retainedMsg
	retainedIdx  *topic.Names // the names in retained, for matching a filter (sendRetained)
	retainedBuf  []string     // sendRetained's matches, reused
	predefByName map[string]uint16

	timers        sessionHeap
	nextAdvertise time.Time

	// Reused per call so the steady state allocates nothing.
	pkt       packet.Packet // the decoded input
	outPkt    packet.Packet // the packet being encoded
	arena     []byte        // encoded output; datagrams alias it until the next call
	matches   []topic.Entry
	inMsg     message  // the PUBLISH being handled (handlePublish)
	idScratch []uint16 // topic ids being released (clearKnown)

	// Persistence (persist.go).
	journal   []byte
	scratch   []byte
	dirtyList []*session
	nextSeq   uint64

	rng uint64 // splitmix64 state for unguessable message ids (amplification.go)

	// Back-pressure (hold.go): client publications waiting for room, in arrival order;
	// heldWake is set when an outbox they wait on may have room.
	held     []heldPublish
	heldWake bool
	heldPass uint32
}

// New returns a broker with cfg (zero fields take their defaults). It returns an error
// if cfg fails Validate.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg:          cfg,
		byClientID:   make(map[string]*session),
		byPeer:       make(map[peerKey]*session),
		perAddr:      make(map[netip.Addr]int),
		subs:         topic.NewIndex(),
		retained:     make(map[string]*retainedMsg),
		retainedIdx:  topic.NewNames(),
		predefByName: make(map[string]uint16, len(cfg.Predefined)),
		arena:        make([]byte, 0, 4096),
	}
	b.topics.init()
	b.rng = cfg.Seed
	for id, name := range cfg.Predefined {
		b.predefByName[name] = id
	}
	return b, nil
}

// Receive handles one received datagram at time now and appends the datagrams to send
// (replies, deliveries, broadcasts) to out.
func (b *Broker) Receive(now time.Time, in Datagram, out []Datagram) []Datagram {
	b.arena = b.arena[:0]
	b.c.bytesIn.Add(uint64(len(in.B)))
	p := &b.pkt
	if err := packet.Decode(in.B, p); err != nil {
		b.c.malformed[packet.ReasonOf(err)].Add(1)
		b.c.drops[DropMalformed].Add(1)
		return out
	}
	b.c.in[p.Type].Add(1)
	from := peer{addr: in.Addr, encap: p.Encapsulated, radius: p.Radius}
	if p.Encapsulated {
		from.node = string(p.NodeID)
	}
	r := request{now: now, from: from, mark: in.Mark, p: p, size: len(in.B)}
	s := b.byPeer[from.key()]
	if s != nil {
		s.lastHeard = now
		s.rxBytes += uint64(len(in.B))
	}

	switch p.Type {
	case packet.SEARCHGW:
		out = b.handleSearchGW(&r, out)
	case packet.ADVERTISE, packet.GWINFO:
		// Other gateways announcing themselves: nothing for a broker to do.
	case packet.CONNECT:
		out = b.handleConnect(&r, s, out)
	case packet.WILLTOPIC:
		out = b.handleWillTopic(&r, s, out)
	case packet.WILLMSG:
		out = b.handleWillMsg(&r, s, out)
	case packet.WILLTOPICUPD:
		out = b.handleWillTopicUpdate(&r, s, out)
	case packet.WILLMSGUPD:
		out = b.handleWillMsgUpdate(&r, s, out)
	case packet.REGISTER:
		out = b.handleRegister(&r, s, out)
	case packet.REGACK:
		out = b.handleRegack(&r, s, out)
	case packet.PUBLISH:
		out = b.handlePublish(&r, s, out)
	case packet.PUBACK:
		out = b.handlePuback(&r, s, out)
	case packet.PUBREC:
		out = b.handlePubrec(&r, s, out)
	case packet.PUBREL:
		out = b.handlePubrel(&r, s, out)
	case packet.PUBCOMP:
		out = b.handlePubcomp(&r, s, out)
	case packet.SUBSCRIBE:
		out = b.handleSubscribe(&r, s, out)
	case packet.UNSUBSCRIBE:
		out = b.handleUnsubscribe(&r, s, out)
	case packet.PINGREQ:
		out = b.handlePingreq(&r, s, out)
	case packet.PINGRESP:
		// The answer to a broker PINGREQ; lastHeard is already updated.
		if s == nil {
			b.c.drops[DropNoSession].Add(1)
		}
	case packet.DISCONNECT:
		out = b.handleDisconnect(&r, s, out)
	default:
		// CONNACK, WILLTOPICREQ, SUBACK and the rest travel gateway → client only.
		b.c.drops[DropUnexpected].Add(1)
	}
	if s != nil && s.live && !s.validated && s.out.queued() > 0 {
		// Every datagram from an unproven address grows its budget: deliveries (or the
		// REGISTER they wait for) that did not fit may fit now.
		out = b.pump(s, now, out)
	}
	if b.heldWake {
		out = b.releaseHeld(now, out)
	}
	if s != nil && s.live {
		b.schedule(s)
	}
	return out
}

// Tick runs every timer due at now — retransmissions, keep-alive and sleep expiry (and
// the wills they publish), ADVERTISE — and appends what to send to out.
func (b *Broker) Tick(now time.Time, out []Datagram) []Datagram {
	b.arena = b.arena[:0]
	if b.cfg.AdvertiseInterval > 0 && !now.Before(b.nextAdvertise) {
		out = b.advertise(now, out)
	}
	for len(b.timers) > 0 {
		s := b.timers[0]
		if now.Before(s.due) {
			break
		}
		heap.Pop(&b.timers)
		out = b.runTimers(s, now, out)
		if s.live {
			b.schedule(s)
		}
	}
	if b.heldWake {
		out = b.releaseHeld(now, out)
	}
	return b.expireHeld(now, out)
}

// Deadline returns when Tick next has work, or the zero Time if no timer is pending.
func (b *Broker) Deadline() time.Time {
	var d time.Time
	if b.cfg.AdvertiseInterval > 0 {
		d = b.nextAdvertise
		if d.IsZero() {
			// Not advertised yet: the first ADVERTISE is due at once.
			d = time.Unix(0, 1)
		}
	}
	if len(b.timers) > 0 && (d.IsZero() || b.timers[0].due.Before(d)) {
		d = b.timers[0].due
	}
	if h := b.heldDeadline(); !h.IsZero() && (d.IsZero() || h.Before(d)) {
		d = h
	}
	return d
}

// request is the context of the datagram being handled.
type request struct {
	now  time.Time
	from peer
	mark uint64
	p    *packet.Packet
	size int // octets received
}

// peer is where a client is reached: a UDP address and, behind a forwarder, the
// wireless node id whose messages arrive encapsulated and whose replies must be too.
type peer struct {
	addr   netip.AddrPort
	node   string
	radius uint8
	encap  bool
}

type peerKey struct {
	addr netip.AddrPort
	node string
}

func (p peer) key() peerKey { return peerKey{p.addr, p.node} }

// emit encodes b.outPkt for to and appends the datagram to out.
func (b *Broker) emit(out []Datagram, to *peer, mark uint64) []Datagram {
	p := &b.outPkt
	p.Encapsulated, p.Radius = to.encap, to.radius
	p.NodeID = p.NodeID[:0]
	if to.encap {
		p.NodeID = append(p.NodeID, to.node...)
	}
	start := len(b.arena)
	b.arena = packet.Append(b.arena, p)
	buf := b.arena[start:len(b.arena):len(b.arena)]
	b.c.out[p.Type].Add(1)
	b.c.bytesOut.Add(uint64(len(buf)))
	return append(out, Datagram{Addr: to.addr, B: buf, Mark: mark})
}

// emitTo emits b.outPkt to session s, counting the octets against s's amplification
// budget while its address is unproven (amplification.go).
func (b *Broker) emitTo(out []Datagram, s *session, mark uint64) []Datagram {
	out = b.emit(out, &s.peer, mark)
	if !s.validated {
		s.txBytes += uint64(len(out[len(out)-1].B))
	}
	return out
}

// reply resets the output packet to type t, ready for its fields.
func (b *Broker) reply(t packet.Type) *packet.Packet {
	nodeID := b.outPkt.NodeID
	b.outPkt = packet.Packet{Type: t, NodeID: nodeID[:0]}
	return &b.outPkt
}

func (b *Broker) event(e Event) {
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(e)
	}
}

func (b *Broker) limitHit(l Limit, clientID string) { b.limitHitDetail(l, clientID, "") }

func (b *Broker) limitHitDetail(l Limit, clientID, detail string) {
	b.c.limits[l].Add(1)
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(Event{Kind: EventLimit, Limit: l, ClientID: clientID, Detail: detail})
	}
}

// grace stretches a client-announced period by the spec's timer tolerance (6.14 and the
// checklist): +50% for periods under a minute, +10% above.
func grace(d time.Duration) time.Duration {
	if d < time.Minute {
		return d + d/2
	}
	return d + d/10
}
