package broker

import (
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// A deterministic, seeded, virtual-time simulation of the engine and two clients — a
// publisher and a persistent subscriber — over links that drop, duplicate, delay
// (0-50 ms, hence reorder) datagrams in both directions. The clients are small sans-IO
// models of the MQTT-SN client side (6.13: T_RETRY, N_RETRY, DUP; QoS 2 receiver
// state; reconnect with CleanSession=0 when retries run out or the gateway says
// DISCONNECT), so every exchange that exhausts its retries and forces a session resume
// is exercised too.

var (
	simSeeds    = flag.Int("sim.seeds", 3, "lossy-link simulation: seeds per case")
	simMessages = flag.Int("sim.messages", 34000, "lossy-link simulation: messages per seed")
	simLoss     = flag.String("sim.loss", "0.20", "lossy-link simulation: comma-separated loss rates, each run with 5% duplication and 0-50 ms delay")
)

type simLink struct {
	loss, dup float64
	maxDelay  time.Duration
}

type simEvent struct {
	at   time.Time
	seq  uint64
	to   netip.AddrPort // the broker address means "to the broker"
	from netip.AddrPort
	b    []byte
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simWorld struct {
	rng    *rand.Rand
	link   simLink
	now    time.Time
	events simQueue
	seq    uint64
	b      *Broker
	addr   netip.AddrPort // the broker
	stats  simStats
}

type simStats struct {
	datagrams, dropped, duplicated int
	resumes                        int
}

func (w *simWorld) transmit(from, to netip.AddrPort, b []byte) {
	w.stats.datagrams++
	if w.rng.Float64() < w.link.loss {
		w.stats.dropped++
		return
	}
	copies := 1
	if w.rng.Float64() < w.link.dup {
		copies = 2
		w.stats.duplicated++
	}
	for i := 0; i < copies; i++ {
		delay := time.Duration(w.rng.Int64N(int64(w.link.maxDelay) + 1))
		w.seq++
		heap.Push(&w.events, simEvent{at: w.now.Add(delay), seq: w.seq, to: to, from: from, b: append([]byte(nil), b...)})
	}
}

// simClient is the client-side protocol model.
type simClient struct {
	w         *simWorld
	addr      netip.AddrPort
	id        string
	connected bool
	// one outstanding request (CONNECT, SUBSCRIBE, PUBLISH, PUBREL, PINGREQ)
	pending  []byte
	waitFor  packet.Type
	waitID   uint16
	retries  int
	deadline time.Time
	onDone   func()
	lastSend time.Time

	// subscriber side
	qos2Seen  map[uint16]bool // QoS 2 msg ids delivered and not yet released
	released  map[uint16]time.Time
	delivered map[string]int // payload → deliveries to the application

	// publisher side
	next, total int
	qos         packet.QoS
	topicID     uint16
	msgID       uint16
	subscribed  bool
	inPubrel    bool

	// sleeping subscriber
	sleepy bool
	asleep bool
	wakeAt time.Time
	// QoS 0 publisher pacing
	nextAt time.Time
}

const (
	simSleep   = 120 * time.Second // DISCONNECT Duration
	simWakeGap = 30 * time.Second  // how often the sleeper wakes to collect its messages
)

func (c *simClient) goToSleep() {
	c.send(packet.Packet{Type: packet.DISCONNECT, HasDuration: true, Duration: uint16(simSleep / time.Second)}, packet.DISCONNECT, 0, func() {
		c.asleep = true
		c.wakeAt = c.w.now.Add(simWakeGap)
	})
}

const (
	simRetry    = 2 * time.Second
	simNRetry   = 5
	simKeepSecs = 20
)

func (c *simClient) send(p packet.Packet, waitFor packet.Type, waitID uint16, done func()) {
	b := packet.Append(nil, &p)
	c.pending, c.waitFor, c.waitID, c.retries, c.onDone = b, waitFor, waitID, 0, done
	c.deadline = c.w.now.Add(simRetry)
	c.lastSend = c.w.now
	c.w.transmit(c.addr, c.w.addr, b)
}

func (c *simClient) sendOnce(p packet.Packet) {
	c.w.transmit(c.addr, c.w.addr, packet.Append(nil, &p))
}

func (c *simClient) connect() {
	c.connected = false
	c.send(packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: simKeepSecs, ClientID: []byte(c.id)}, packet.CONNACK, 0, func() {
		c.connected = true
		c.afterConnect()
	})
}

func (c *simClient) afterConnect() {
	if c.total == 0 { // subscriber
		c.asleep = false
		if !c.subscribed {
			c.send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(2), MsgID: 1, TopicName: []byte("sim/t")}, packet.SUBACK, 1, func() {
				c.subscribed = true
				if c.sleepy {
					c.goToSleep()
				}
			})
		} else if c.sleepy {
			c.goToSleep()
		}
		return
	}
	if c.topicID == 0 {
		c.send(packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("sim/t")}, packet.REGACK, 1, nil)
		return
	}
	// Resume: the message in flight goes again with its msg id — as PUBLISH with DUP, or
	// as PUBREL if the gateway had already acknowledged it with PUBREC.
	if c.inPubrel {
		c.releaseCurrent()
		return
	}
	c.publishNext(c.msgID != 0)
}

func (c *simClient) releaseCurrent() {
	c.inPubrel = true
	c.send(packet.Packet{Type: packet.PUBREL, MsgID: c.msgID}, packet.PUBCOMP, c.msgID, func() {
		c.inPubrel = false
		c.next++
		c.publishNext(false)
	})
}

func (c *simClient) publishNext(dup bool) {
	if c.qos == packet.QoS0 {
		c.pending = nil // paced by tick
		return
	}
	if c.next >= c.total {
		c.pending = nil
		return
	}
	if !dup {
		c.msgID++
		if c.msgID == 0 {
			c.msgID = 1
		}
	}
	flags := packet.Flags(0).WithQoS(c.qos)
	if dup {
		flags |= packet.FlagDUP
	}
	p := packet.Packet{Type: packet.PUBLISH, Flags: flags, TopicID: c.topicID, MsgID: c.msgID, Data: []byte(fmt.Sprintf("m%07d", c.next))}
	wait := packet.PUBACK
	if c.qos == packet.QoS2 {
		wait = packet.PUBREC
	}
	c.send(p, wait, c.msgID, func() {
		if c.qos == packet.QoS2 {
			c.releaseCurrent()
			return
		}
		c.next++
		c.publishNext(false)
	})
}

func (c *simClient) receive(b []byte) {
	var p packet.Packet
	if err := packet.Decode(b, &p); err != nil {
		panic(fmt.Sprintf("broker sent malformed %x: %v", b, err))
	}
	switch p.Type {
	case packet.DISCONNECT:
		if c.pending != nil && c.waitFor == packet.DISCONNECT {
			break // the gateway's answer to our DISCONNECT (going to sleep)
		}
		// The gateway has no session for us (it gave up on us): resume.
		c.w.stats.resumes++
		c.connect()
		return
	case packet.REGISTER:
		c.sendOnce(packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
		return
	case packet.PUBLISH:
		switch p.Flags.QoS() {
		case packet.QoS1:
			c.delivered[string(p.Data)]++
			c.sendOnce(packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
		case packet.QoS2:
			if at, ok := c.released[p.MsgID]; ok && c.w.now.Sub(at) < simRetry {
				// A stray copy of a publication already released (see Broker.recentlyReleased).
			} else if !c.qos2Seen[p.MsgID] {
				c.qos2Seen[p.MsgID] = true
				c.delivered[string(p.Data)]++
			}
			c.sendOnce(packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
		default:
			c.delivered[string(p.Data)]++
		}
		return
	case packet.PUBREL:
		if c.qos2Seen[p.MsgID] {
			c.released[p.MsgID] = c.w.now
		}
		delete(c.qos2Seen, p.MsgID)
		c.sendOnce(packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
		return
	}
	if c.pending == nil || p.Type != c.waitFor {
		return
	}
	switch p.Type {
	case packet.PUBACK, packet.PUBREC, packet.PUBCOMP, packet.SUBACK, packet.REGACK:
		if p.MsgID != c.waitID {
			return
		}
	}
	if p.Type == packet.REGACK {
		c.topicID = p.TopicID
	}
	c.pending = nil
	if c.onDone != nil {
		c.onDone()
	}
	if p.Type == packet.REGACK {
		c.publishNext(c.msgID != 0)
	}
}

func (c *simClient) tick() {
	if c.pending != nil && !c.w.now.Before(c.deadline) {
		if c.retries >= simNRetry {
			// N_RETRY exhausted: the gateway is considered lost; reconnect and resume.
			c.w.stats.resumes++
			c.connect()
			return
		}
		c.retries++
		c.deadline = c.w.now.Add(simRetry)
		if c.pending[1] == byte(packet.PUBLISH) {
			c.pending[2] |= byte(packet.FlagDUP)
		}
		c.lastSend = c.w.now
		c.w.transmit(c.addr, c.w.addr, c.pending)
		return
	}
	if c.sleepy {
		if c.pending == nil && c.asleep && !c.w.now.Before(c.wakeAt) {
			// Wake up: PINGREQ with our ClientId; the gateway flushes what it buffered,
			// then answers PINGRESP and we are asleep again.
			c.send(packet.Packet{Type: packet.PINGREQ, ClientID: []byte(c.id)}, packet.PINGRESP, 0, func() {
				c.wakeAt = c.w.now.Add(simWakeGap)
			})
		}
		return
	}
	if c.total > 0 && c.qos == packet.QoS0 {
		if c.connected && c.topicID != 0 && c.next < c.total && !c.w.now.Before(c.nextAt) {
			c.sendOnce(packet.Packet{Type: packet.PUBLISH, TopicID: c.topicID, Data: []byte(fmt.Sprintf("m%07d", c.next))})
			c.next++
			c.nextAt = c.w.now.Add(10 * time.Millisecond)
			c.lastSend = c.w.now
		}
	}
	if c.pending == nil && c.connected && c.w.now.Sub(c.lastSend) >= simKeepSecs*time.Second/2 {
		c.send(packet.Packet{Type: packet.PINGREQ}, packet.PINGRESP, 0, nil)
	}
}

func (c *simClient) due() time.Time {
	if c.pending != nil {
		return c.deadline
	}
	if c.sleepy && c.asleep {
		return c.wakeAt
	}
	if c.total > 0 && c.qos == packet.QoS0 && c.next < c.total && c.topicID != 0 {
		return c.nextAt
	}
	return c.lastSend.Add(simKeepSecs * time.Second / 2)
}

type simResult struct {
	sent, lost, duplicated int
	stats                  simStats
	brokerRetrans          uint64
}

func runSim(t testing.TB, seed uint64, qos packet.QoS, n int, link simLink, sleepy bool) simResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	w := &simWorld{rng: rng, link: link, now: time.Unix(1e6, 0), addr: netip.MustParseAddrPort("10.0.0.254:1883")}
	b, err := New(Config{AdvertiseInterval: -1, RetryInterval: simRetry, MaxRetries: simNRetry, Seed: seed,
		MaxQueuedPerClient: n + 10, MaxSleepBuffer: n + 10})
	if err != nil {
		t.Fatal(err)
	}
	w.b = b
	sub := &simClient{w: w, addr: netip.MustParseAddrPort("10.0.0.1:1000"), id: "sub", sleepy: sleepy, qos2Seen: map[uint16]bool{}, released: map[uint16]time.Time{}, delivered: map[string]int{}}
	pub := &simClient{w: w, addr: netip.MustParseAddrPort("10.0.0.2:1000"), id: "pub", total: n, qos: qos}
	clients := map[netip.AddrPort]*simClient{sub.addr: sub, pub.addr: pub}
	sub.connect()
	// The publisher starts once the subscription is in place.
	started := false
	var out []Datagram
	deadline := w.now.Add(time.Duration(n) * 10 * time.Second)
	for w.now.Before(deadline) {
		if !started && sub.subscribed {
			started = true
			pub.connect()
		}
		if started && pub.next >= n && pub.pending == nil && b.Stats().Inflight == 0 && b.Stats().Queued == 0 {
			if qos > packet.QoS0 || len(w.events) == 0 {
				break
			}
		}
		// Next event: a datagram, a client timer or the broker's.
		next := sub.due()
		if started && pub.due().Before(next) {
			next = pub.due()
		}
		if d := b.Deadline(); !d.IsZero() && d.Before(next) {
			next = d
		}
		if len(w.events) > 0 && w.events[0].at.Before(next) {
			next = w.events[0].at
		}
		if next.After(w.now) {
			w.now = next
		}
		if len(w.events) > 0 && !w.events[0].at.After(w.now) {
			e := heap.Pop(&w.events).(simEvent)
			if e.to == w.addr {
				out = b.Receive(w.now, Datagram{Addr: e.from, B: e.b}, out[:0])
				for _, d := range out {
					w.transmit(w.addr, d.Addr, d.B)
				}
			} else if c := clients[e.to]; c != nil {
				c.receive(e.b)
			}
			continue
		}
		if d := b.Deadline(); !d.IsZero() && !d.After(w.now) {
			out = b.Tick(w.now, out[:0])
			for _, d := range out {
				w.transmit(w.addr, d.Addr, d.B)
			}
		}
		sub.tick()
		if started {
			pub.tick()
		}
	}
	if pub.next < n {
		t.Fatalf("seed %d: publisher finished only %d of %d messages by virtual %v (now %v, pending %x wait %v/%d connected %v, broker %+v)", seed, pub.next, n, deadline, w.now, pub.pending, pub.waitFor, pub.waitID, pub.connected, b.Stats().ClientsByState)
	}
	res := simResult{sent: n, stats: w.stats, brokerRetrans: b.Stats().Retransmissions}
	for i := 0; i < n; i++ {
		switch got := sub.delivered[fmt.Sprintf("m%07d", i)]; {
		case got == 0:
			res.lost++
		case got > 1:
			res.duplicated += got - 1
		}
	}
	return res
}

func TestLossyLinkSimulation(t *testing.T) {
	for _, f := range strings.Split(*simLoss, ",") {
		loss, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || loss < 0 || loss >= 1 {
			t.Fatalf("-sim.loss %q: want rates in [0, 1)", f)
		}
		lossyLinkAt(t, simLink{loss: loss, dup: 0.05, maxDelay: 50 * time.Millisecond})
	}
}

func lossyLinkAt(t *testing.T, link simLink) {
	for _, qos := range []packet.QoS{packet.QoS0, packet.QoS1, packet.QoS2} {
		var total simResult
		for seed := uint64(1); seed <= uint64(*simSeeds); seed++ {
			r := runSim(t, seed, qos, *simMessages, link, false)
			total.sent += r.sent
			total.lost += r.lost
			total.duplicated += r.duplicated
			total.stats.resumes += r.stats.resumes
			total.stats.datagrams += r.stats.datagrams
			total.stats.dropped += r.stats.dropped
			total.stats.duplicated += r.stats.duplicated
			total.brokerRetrans += r.brokerRetrans
		}
		t.Logf("QoS %d at %.0f%% loss, 5%% duplication, 0-50 ms delay: %d seeds, %d messages sent, %d lost, %d duplicated; %d datagrams (%d dropped, %d duplicated by the link), %d session resumes, %d broker retransmissions",
			qos, link.loss*100, *simSeeds, total.sent, total.lost, total.duplicated, total.stats.datagrams, total.stats.dropped, total.stats.duplicated, total.stats.resumes, total.brokerRetrans)
		if total.lost != 0 && qos > packet.QoS0 {
			t.Errorf("QoS %d: %d messages lost", qos, total.lost)
		}
		if qos == packet.QoS2 && total.duplicated != 0 {
			t.Errorf("QoS 2: %d messages delivered more than once", total.duplicated)
		}
	}
}

// TestLossySleepingSubscriber: a sleeping subscriber that wakes every 30 s through the
// same lossy link gets every QoS 1 message the broker buffered for it.
func TestLossySleepingSubscriber(t *testing.T) {
	link := simLink{loss: 0.20, dup: 0.05, maxDelay: 50 * time.Millisecond}
	n := *simMessages / 10
	var total simResult
	for seed := uint64(1); seed <= uint64(*simSeeds); seed++ {
		r := runSim(t, seed, packet.QoS1, n, link, true)
		total.sent += r.sent
		total.lost += r.lost
		total.stats.resumes += r.stats.resumes
	}
	t.Logf("sleeping subscriber, QoS 1 at 20%% loss: %d messages sent, %d lost, %d session resumes", total.sent, total.lost, total.stats.resumes)
	if total.lost != 0 {
		t.Fatalf("%d buffered QoS 1 messages lost", total.lost)
	}
}
