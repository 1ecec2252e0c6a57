package broker_test

import (
	"container/heap"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

// Back-pressure: a PUBACK/PUBREC "accepted" means delivery to every matching subscriber
// (docs/reliability.md). These tests drive the engine in virtual time with clients that
// answer at their own pace: a publisher keeping a window of QoS 1/2 PUBLISHes
// unacknowledged, subscribers whose acknowledgements take ackDelay.
//
//	go test -run 'TestBackpressure' -v ./broker/   (prints the figures)

// flowSim is a virtual-time network around one broker: datagrams to the broker are
// events at a time; what the broker sends reaches the clients at once.
type flowSim struct {
	t      *testing.T
	b      *broker.Broker
	now    time.Time
	events eventHeap
	seq    int
	out    []broker.Datagram
	byAddr map[netip.AddrPort]*flowClient
	pub    *flowClient
	subs   []*flowClient
}

type flowEvent struct {
	at   time.Time
	seq  int
	from netip.AddrPort
	b    []byte
	fn   func() // or a client-side action
}

type eventHeap []flowEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(flowEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type flowClient struct {
	name     string
	addr     netip.AddrPort
	ackDelay time.Duration

	// subscriber
	delivered map[string]int // payload → times delivered to the application
	qos2      map[uint16]bool

	// publisher
	qos        packet.QoS
	window     int
	total      int
	next       int                     // next payload number to publish
	pending    map[uint16]*flowPublish // by msg id
	msgID      uint16
	topicID    uint16
	accepted   map[string]bool // PUBACK/PUBREC accepted
	congested  map[string]bool // PUBACK 0x01
	resends    int
	lastAccept time.Time
}

type flowPublish struct {
	p    packet.Packet
	sent time.Time
}

const flowClientRetry = 10 * time.Second

func newFlowSim(t *testing.T, cfg broker.Config) *flowSim {
	cfg.AdvertiseInterval = -1
	if cfg.MaxAmplification == 0 {
		cfg.MaxAmplification = -1
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &flowSim{t: t, b: b, now: brokertest.Start, byAddr: map[netip.AddrPort]*flowClient{}}
}

func (s *flowSim) client(name string, i int) *flowClient {
	c := &flowClient{name: name, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 1883),
		delivered: map[string]int{}, qos2: map[uint16]bool{}, pending: map[uint16]*flowPublish{},
		accepted: map[string]bool{}, congested: map[string]bool{}}
	s.byAddr[c.addr] = c
	return c
}

// send queues p from c to reach the broker after d.
func (s *flowSim) send(c *flowClient, d time.Duration, p packet.Packet) {
	s.seq++
	heap.Push(&s.events, flowEvent{at: s.now.Add(d), seq: s.seq, from: c.addr, b: packet.Append(nil, &p)})
}

func (s *flowSim) later(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.events, flowEvent{at: s.now.Add(d), seq: s.seq, fn: fn})
}

// exchange sends p from c now, runs the broker and returns what c got back.
func (s *flowSim) exchange(c *flowClient, p packet.Packet) []packet.Packet {
	s.out = s.b.Receive(s.now, broker.Datagram{Addr: c.addr, B: packet.Append(nil, &p)}, s.out[:0])
	var got []packet.Packet
	for _, d := range s.out {
		var q packet.Packet
		if err := packet.Decode(append([]byte(nil), d.B...), &q); err != nil {
			s.t.Fatal(err)
		}
		if d.Addr == c.addr {
			got = append(got, q)
		}
	}
	return got
}

func (s *flowSim) connect(c *flowClient) {
	if got := s.exchange(c, connectPkt(c.name, packet.FlagCleanSession, 0)); len(got) != 1 || got[0].ReturnCode != packet.Accepted {
		s.t.Fatalf("%s: CONNECT answered %v", c.name, got)
	}
}

func (s *flowSim) subscriber(i int, granted packet.QoS, ackDelay time.Duration) *flowClient {
	c := s.client(fmt.Sprint("sub", i), 1000+i)
	c.ackDelay = ackDelay
	s.connect(c)
	got := s.exchange(c, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(granted), MsgID: 1, TopicName: []byte("flow/t")})
	if len(got) != 1 || got[0].ReturnCode != packet.Accepted {
		s.t.Fatalf("SUBACK %v", got)
	}
	s.subs = append(s.subs, c)
	return c
}

func (s *flowSim) publisher(q packet.QoS, window, total int) *flowClient {
	c := s.client("pub", 1)
	c.qos, c.window, c.total = q, window, total
	s.connect(c)
	got := s.exchange(c, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("flow/t")})
	c.topicID, c.msgID = got[0].TopicID, 1
	s.pub = c
	return c
}

// fill publishes while the publisher's window has room.
func (s *flowSim) fill(c *flowClient) {
	for len(c.pending) < c.window && c.next < c.total {
		c.msgID++
		if c.msgID == 0 {
			c.msgID = 1
		}
		p := publishPkt(c.qos, packet.TopicNormal, c.topicID, c.msgID, strconv.Itoa(c.next))
		c.next++
		c.pending[p.MsgID] = &flowPublish{p: p, sent: s.now}
		s.send(c, 0, p)
		s.retryLater(c, p.MsgID, 0)
	}
}

// retryLater resends msgID with DUP after the client's T_RETRY while it is pending.
func (s *flowSim) retryLater(c *flowClient, msgID uint16, n int) {
	s.later(flowClientRetry, func() {
		fp, ok := c.pending[msgID]
		if !ok || n >= 5 {
			return
		}
		p := fp.p
		p.Flags |= packet.FlagDUP
		c.resends++
		s.send(c, 0, p)
		s.retryLater(c, msgID, n+1)
	})
}

// run delivers events until none is left or until is reached.
func (s *flowSim) run(until time.Time) {
	s.fill(s.pub)
	for s.now.Before(until) {
		next := until
		if len(s.events) > 0 && s.events[0].at.Before(next) {
			next = s.events[0].at
		}
		if d := s.b.Deadline(); !d.IsZero() && d.Before(next) {
			s.now = d
			s.route(s.b.Tick(s.now, s.out[:0]))
			continue
		}
		if len(s.events) == 0 {
			if s.pub.next >= s.pub.total && len(s.pub.pending) == 0 {
				return
			}
			s.now = until
			return
		}
		e := heap.Pop(&s.events).(flowEvent)
		s.now = e.at
		if e.fn != nil {
			e.fn()
			continue
		}
		s.route(s.b.Receive(s.now, broker.Datagram{Addr: e.from, B: e.b}, s.out[:0]))
	}
}

func (s *flowSim) route(out []broker.Datagram) {
	s.out = out
	// Decode everything first: the clients' answers re-enter the broker later, but
	// the buffers belong to the broker until its next call.
	type rx struct {
		c *flowClient
		p packet.Packet
	}
	var got []rx
	for _, d := range out {
		c := s.byAddr[d.Addr]
		if c == nil {
			continue
		}
		var p packet.Packet
		if err := packet.Decode(append([]byte(nil), d.B...), &p); err != nil {
			s.t.Fatal(err)
		}
		got = append(got, rx{c, p})
	}
	for _, r := range got {
		s.handle(r.c, r.p)
	}
}

func (s *flowSim) handle(c *flowClient, p packet.Packet) {
	switch p.Type {
	case packet.PUBLISH: // to a subscriber
		switch p.Flags.QoS() {
		case packet.QoS1:
			c.delivered[string(p.Data)]++
			s.send(c, c.ackDelay, pubackPkt(p.TopicID, p.MsgID, packet.Accepted))
		case packet.QoS2:
			if !c.qos2[p.MsgID] {
				c.qos2[p.MsgID] = true
				c.delivered[string(p.Data)]++
			}
			s.send(c, c.ackDelay, ack(packet.PUBREC, p.MsgID))
		default:
			c.delivered[string(p.Data)]++
		}
	case packet.PUBREL:
		delete(c.qos2, p.MsgID)
		s.send(c, 0, ack(packet.PUBCOMP, p.MsgID))
	case packet.REGISTER:
		s.send(c, 0, packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
	case packet.PUBACK, packet.PUBREC: // to the publisher
		fp, ok := c.pending[p.MsgID]
		if !ok {
			return
		}
		data := string(fp.p.Data)
		if p.Type == packet.PUBACK && p.ReturnCode != packet.Accepted {
			c.congested[data] = true
			delete(c.pending, p.MsgID)
		} else if p.Type == packet.PUBACK {
			c.accepted[data], c.lastAccept = true, s.now
			delete(c.pending, p.MsgID)
		} else {
			c.accepted[data], c.lastAccept = true, s.now
			s.send(c, 0, ack(packet.PUBREL, p.MsgID))
			return // pending until PUBCOMP
		}
		s.fill(c)
	case packet.PUBCOMP:
		if _, ok := c.pending[p.MsgID]; ok {
			delete(c.pending, p.MsgID)
			s.fill(c)
		}
	}
}

// flowFigures are the headline numbers of one run.
type flowFigures struct {
	accepted, congested, lost, duplicated, delivered int
	elapsed                                          time.Duration
}

func (f flowFigures) rate() float64 { return float64(f.accepted) / f.elapsed.Seconds() }

// check counts, for every subscriber, accepted messages never delivered and
// deliveries beyond one, and deliveries of messages refused with congestion.
func (s *flowSim) figures() (f flowFigures, congestedDelivered int) {
	p := s.pub
	f.accepted, f.congested, f.elapsed = len(p.accepted), len(p.congested), p.lastAccept.Sub(brokertest.Start)
	for _, c := range s.subs {
		for data := range p.accepted {
			switch n := c.delivered[data]; {
			case n == 0:
				f.lost++
			case n > 1:
				f.duplicated += n - 1
			}
		}
		for data := range p.congested {
			congestedDelivered += c.delivered[data]
		}
		for _, n := range c.delivered {
			f.delivered += n
		}
	}
	return f, congestedDelivered
}

// TestBackpressureWindow16 is the headline case: a publisher keeping 16 QoS 1
// PUBLISHes unacknowledged, one QoS 1 subscriber acknowledging at its own pace (1 ms).
func TestBackpressureWindow16(t *testing.T) {
	for _, policy := range []broker.QueueFullPolicy{broker.PolicyBlock, broker.PolicyDrop} {
		t.Run(policy.String(), func(t *testing.T) {
			const total = 3000
			s := newFlowSim(t, broker.Config{MaxQueuedPerClient: 100, QueueFullPolicy: policy})
			s.subscriber(0, packet.QoS1, time.Millisecond)
			s.publisher(packet.QoS1, 16, total)
			maxHeld := int64(0)
			for !s.now.After(brokertest.Start.Add(time.Minute)) && (s.pub.next < total || len(s.pub.pending) > 0) {
				s.run(s.now.Add(100 * time.Millisecond))
				maxHeld = max(maxHeld, s.b.Stats().Held)
			}
			s.run(s.now.Add(10 * time.Second)) // let the subscriber drain
			f, cd := s.figures()
			st := s.b.Stats()
			t.Logf("%v: %d published, %d acknowledged, %d delivered, %d acknowledged and lost, %d duplicated, %d congestion answers, %d dropped queue_full, held up to %d, publisher %.0f msg/s (virtual)",
				policy, s.pub.next, f.accepted, f.delivered, f.lost, f.duplicated, f.congested, st.Drops[broker.DropQueueFull], maxHeld, f.rate())
			if policy == broker.PolicyDrop {
				if f.lost == 0 {
					t.Errorf("policy drop lost nothing: the test does not load the outbox")
				}
				return
			}
			if f.accepted != total || f.lost != 0 || f.duplicated != 0 || f.congested != 0 || cd != 0 {
				t.Errorf("accepted %d of %d, lost %d, duplicated %d, congestion %d (%d delivered)", f.accepted, total, f.lost, f.duplicated, f.congested, cd)
			}
			if maxHeld == 0 || maxHeld > 16 {
				t.Errorf("held up to %d publications, want 1..16 (the publisher's window)", maxHeld)
			}
			// Paced: the publisher cannot go faster than the subscriber's 1 ms per
			// acknowledgement once the 100-deep outbox is full.
			if min := time.Duration(total-100-16) * time.Millisecond; f.elapsed < min {
				t.Errorf("publisher done in %v, faster than its subscriber allows (%v)", f.elapsed, min)
			}
			if st.Drops[broker.DropQueueFull] != 0 || st.Held != 0 || st.Queued != 0 || st.Inflight != 0 {
				t.Errorf("after: queue_full %d, held %d, queued %d, inflight %d", st.Drops[broker.DropQueueFull], st.Held, st.Queued, st.Inflight)
			}
		})
	}
}

// TestBackpressureFanoutSlow: one publisher (16 in flight) to 100 QoS 1 subscribers of
// which 10 acknowledge 20 times slower: nothing acknowledged is lost, and the publisher
// is paced to the slowest.
func TestBackpressureFanoutSlow(t *testing.T) {
	const total, subs, slow = 400, 100, 10
	const fast, slowDelay = time.Millisecond, 20 * time.Millisecond
	s := newFlowSim(t, broker.Config{MaxQueuedPerClient: 50})
	for i := range subs {
		d := fast
		if i%(subs/slow) == 0 {
			d = slowDelay
		}
		s.subscriber(i, packet.QoS1, d)
	}
	s.publisher(packet.QoS1, 16, total)
	s.run(brokertest.Start.Add(2 * time.Minute))
	f, cd := s.figures()
	t.Logf("%d acknowledged of %d, %d delivered to %d subscribers, %d acknowledged and lost, %d duplicated, %d congestion answers, publisher %.1f msg/s (virtual; the slow subscribers take %.0f/s)",
		f.accepted, total, f.delivered, subs, f.lost, f.duplicated, f.congested, f.rate(), float64(time.Second)/float64(slowDelay))
	if f.accepted != total || f.lost != 0 || f.duplicated != 0 || f.congested != 0 || cd != 0 {
		t.Errorf("accepted %d of %d, lost %d, duplicated %d, congestion %d", f.accepted, total, f.lost, f.duplicated, f.congested)
	}
	if f.delivered != total*subs {
		t.Errorf("%d deliveries, want %d", f.delivered, total*subs)
	}
	if min := time.Duration(total-50-16) * slowDelay; f.elapsed < min {
		t.Errorf("publisher done in %v: not paced to the slowest (%v)", f.elapsed, min)
	}
}

// TestBackpressureQoS2: the same with QoS 2, where PUBREC is what is held.
func TestBackpressureQoS2(t *testing.T) {
	const total = 1000
	s := newFlowSim(t, broker.Config{MaxQueuedPerClient: 50})
	s.subscriber(0, packet.QoS2, time.Millisecond)
	s.publisher(packet.QoS2, 16, total)
	s.run(brokertest.Start.Add(time.Minute))
	f, cd := s.figures()
	st := s.b.Stats()
	t.Logf("QoS 2: %d acknowledged (PUBREC), %d delivered, %d lost, %d duplicated, %d congestion, publisher %.0f msg/s (virtual)",
		f.accepted, f.delivered, f.lost, f.duplicated, f.congested, f.rate())
	if f.accepted != total || f.lost != 0 || f.duplicated != 0 || f.congested != 0 || cd != 0 {
		t.Errorf("accepted %d of %d, lost %d, duplicated %d, congestion %d", f.accepted, total, f.lost, f.duplicated, f.congested)
	}
	if st.LimitsHit[broker.LimitQoS2Incoming] != 0 || st.Held != 0 {
		t.Errorf("qos2_incoming limit hit %d times, %d still held", st.LimitsHit[broker.LimitQoS2Incoming], st.Held)
	}
	if min := time.Duration(total-50-16) * time.Millisecond; f.elapsed < min {
		t.Errorf("publisher done in %v, not paced (%v)", f.elapsed, min)
	}
}

// heldSetup: a subscriber that does not acknowledge yet, an outbox bound of 1: the
// first PUBLISH goes in flight, the second is queued, the third is held.
func heldSetup(t *testing.T, cfg broker.Config, q packet.QoS) (n *brokertest.Net, pub, sub *brokertest.Client, id uint16, first packet.Packet) {
	t.Helper()
	cfg.MaxQueuedPerClient = 1
	n = newNet(t, cfg)
	pub, sub, id = pubSub(t, n, q)
	pub.Send(publishPkt(q, packet.TopicNormal, id, 1, "m1"))
	first = sub.Expect(t, packet.PUBLISH, brokertest.Data("m1"))
	pub.Drain()
	pub.Send(publishPkt(q, packet.TopicNormal, id, 2, "m2"))
	pub.Drain()
	pub.Send(publishPkt(q, packet.TopicNormal, id, 3, "m3"))
	pub.ExpectNothing(t) // held: no acknowledgement
	if s := n.Stats(); s.Held != 1 || s.Queued != 1 || s.Inflight != 1 {
		t.Fatalf("held %d queued %d inflight %d, want 1, 1, 1", s.Held, s.Queued, s.Inflight)
	}
	return n, pub, sub, id, first
}

func TestBackpressureHeldResend(t *testing.T) {
	for _, q := range []packet.QoS{packet.QoS1, packet.QoS2} {
		t.Run(fmt.Sprint("QoS", q), func(t *testing.T) {
			n, pub, sub, id, first := heldSetup(t, broker.Config{}, q)
			// The publisher's T_RETRY passes: it resends with DUP, twice. Recognised: no
			// second copy, no early acknowledgement.
			for range 2 {
				n.Advance(10 * time.Second)
				p := publishPkt(q, packet.TopicNormal, id, 3, "m3")
				p.Flags |= packet.FlagDUP
				pub.Send(p)
				pub.ExpectNothing(t)
			}
			if s := n.Stats(); s.Held != 1 || s.Drops[broker.DropHeldResend] != 2 {
				t.Fatalf("held %d, held_resend %d", s.Held, s.Drops[broker.DropHeldResend])
			}
			// The subscriber acknowledges m1: m2 goes in flight, m3 is queued and only
			// now acknowledged to the publisher.
			sub.Drain()
			if q == packet.QoS1 {
				sub.Send(pubackPkt(first.TopicID, first.MsgID, 0))
			} else {
				sub.Send(ack(packet.PUBREC, first.MsgID))
				sub.Expect(t, packet.PUBREL)
				sub.Send(ack(packet.PUBCOMP, first.MsgID))
			}
			sub.Expect(t, packet.PUBLISH, brokertest.Data("m2"))
			want := packet.PUBACK
			if q == packet.QoS2 {
				want = packet.PUBREC
			}
			got := pub.Expect(t, want, brokertest.MsgID(3))
			if got.Type == packet.PUBACK && got.ReturnCode != packet.Accepted {
				t.Fatalf("PUBACK %v", got.ReturnCode)
			}
			pub.ExpectNothing(t)
			if s := n.Stats(); s.Held != 0 || s.Queued != 1 {
				t.Fatalf("held %d queued %d", s.Held, s.Queued)
			}
		})
	}
}

func TestBackpressureCongestion(t *testing.T) {
	t.Run("held too long", func(t *testing.T) {
		n, pub, sub, _, first := heldSetup(t, broker.Config{MaxHoldTime: 15 * time.Second}, packet.QoS1)
		n.Advance(15 * time.Second)
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(3), brokertest.RC(packet.Congestion))
		if s := n.Stats(); s.Held != 0 || s.Drops[broker.DropCongestion] != 1 || s.LimitsHit[broker.LimitHold] != 1 {
			t.Fatalf("held %d congestion %d limit %d", s.Held, s.Drops[broker.DropCongestion], s.LimitsHit[broker.LimitHold])
		}
		// Refused means delivered to no one: the subscriber gets m2, never m3.
		sub.Drain()
		sub.Send(pubackPkt(first.TopicID, first.MsgID, 0))
		p := sub.Expect(t, packet.PUBLISH, brokertest.Data("m2"))
		sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
		sub.ExpectNothing(t)
		pub.ExpectNothing(t)
	})
	t.Run("too many held", func(t *testing.T) {
		n, pub, sub, id, first := heldSetup(t, broker.Config{MaxHeldPerClient: 2}, packet.QoS1)
		pub.Send(publishPkt(1, packet.TopicNormal, id, 4, "m4"))
		pub.ExpectNothing(t)
		pub.Send(publishPkt(1, packet.TopicNormal, id, 5, "m5"))
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(5), brokertest.RC(packet.Congestion))
		// Room for one: m3 (the older) is released first, m4 still waits.
		sub.Drain()
		sub.Send(pubackPkt(first.TopicID, first.MsgID, 0))
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(3), brokertest.RC(packet.Accepted))
		pub.ExpectNothing(t)
		var got []string
		for len(got) < 3 {
			p := sub.Await(t, packet.PUBLISH)
			got = append(got, string(p.Data))
			sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
		}
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(4), brokertest.RC(packet.Accepted))
		sub.ExpectNothing(t)
		if fmt.Sprint(got) != "[m2 m3 m4]" {
			t.Errorf("delivered %v", got)
		}
		if s := n.Stats(); s.Drops[broker.DropCongestion] != 1 || s.Held != 0 {
			t.Errorf("congestion %d, held %d", s.Drops[broker.DropCongestion], s.Held)
		}
	})
	t.Run("publisher leaves", func(t *testing.T) {
		n, pub, _, _, _ := heldSetup(t, broker.Config{}, packet.QoS1)
		pub.Send(disconnectPkt())
		pub.Expect(t, packet.DISCONNECT)
		if s := n.Stats(); s.Held != 0 || s.Drops[broker.DropHeldAbandoned] != 1 {
			t.Errorf("held %d, held_abandoned %d", s.Held, s.Drops[broker.DropHeldAbandoned])
		}
	})
	t.Run("subscriber lost releases", func(t *testing.T) {
		n, pub, sub, _, _ := heldSetup(t, broker.Config{MaxHoldTime: 2 * time.Minute}, packet.QoS1)
		// The subscriber stops answering: after N_RETRY resends it is lost (a clean
		// session: deleted), and the held publication goes on to the others (none).
		sub.Auto = false
		for range 6 {
			n.Advance(10 * time.Second)
		}
		pub.Expect(t, packet.PUBACK, brokertest.MsgID(3), brokertest.RC(packet.Accepted))
		if s := n.Stats(); s.Held != 0 || s.Drops[broker.DropCongestion] != 0 {
			t.Errorf("held %d congestion %d", s.Held, s.Drops[broker.DropCongestion])
		}
	})
}

// TestBackpressureSleepingAndOffline: sleepers and offline persistent sessions are
// bounded stores, never waited for: their overflow is dropped, counted, and the
// publisher is acknowledged at once.
func TestBackpressureSleepingAndOffline(t *testing.T) {
	n := newNet(t, broker.Config{MaxSleepBuffer: 2, MaxQueuedPerClient: 3})
	sleeperC := n.NewClient("sleeper", addr3)
	sleeperC.Connect(t, brokertest.ConnectOptions{})
	sleeperC.Subscribe(t, "a/b", 1)
	sleeperC.Send(sleepPkt(600))
	sleeperC.Drain()
	off := n.NewClient("off", addr4)
	off.Connect(t, brokertest.ConnectOptions{Persistent: true})
	off.Subscribe(t, "a/b", 1)
	off.Send(disconnectPkt())
	off.Drain()
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	id := pub.Register(t, "a/b")
	for i := range 5 {
		pub.Send(publishPkt(1, packet.TopicNormal, id, uint16(i+1), fmt.Sprint(i)))
		pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	}
	s := n.Stats()
	if s.Held != 0 || s.Drops[broker.DropSleepBufferFull] != 3 || s.Drops[broker.DropOfflineQueueFull] != 2 || s.Queued != 5 {
		t.Errorf("held %d sleep_buffer_full %d offline_queue_full %d queued %d", s.Held, s.Drops[broker.DropSleepBufferFull], s.Drops[broker.DropOfflineQueueFull], s.Queued)
	}
}

// TestBackpressureRetained: a new '#' subscriber gets all 10,000 retained messages,
// paced by its outbox (default bound 1000), none dropped.
func TestBackpressureRetained(t *testing.T) {
	const total = 10000
	n := newNet(t, broker.Config{MaxTopicsPerClient: 2 * total})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	ids := make([]uint16, total)
	for i := range total {
		ids[i] = pub.Register(t, fmt.Sprintf("r/%d", i))
	}
	for i := range total {
		p := publishPkt(1, packet.TopicNormal, ids[i], uint16(i%60000+1), strconv.Itoa(i))
		p.Flags |= packet.FlagRetain
		pub.Send(p)
		pub.Drain()
	}
	if s := n.Stats(); s.Retained != total {
		t.Fatalf("retained %d, want %d", s.Retained, total)
	}
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "#", 1)
	n.Run()
	got := map[string]bool{}
	for _, d := range sub.Deliveries {
		if d.Retain {
			got[d.Data] = true
		}
	}
	s := n.Stats()
	t.Logf("%d of %d retained messages delivered; dropped queue_full %d; queued %d", len(got), total, s.Drops[broker.DropQueueFull], s.Queued)
	if len(got) != total || s.Drops[broker.DropQueueFull] != 0 || s.Queued != 0 {
		t.Errorf("%d of %d retained delivered, queue_full %d, queued %d", len(got), total, s.Drops[broker.DropQueueFull], s.Queued)
	}
}
