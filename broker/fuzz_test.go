package broker_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// FuzzEngine drives the whole engine with arbitrary datagrams from four peers and
// arbitrary passages of time, checking after every call that
//
//   - nothing panics;
//   - every topic the broker names is a topic name (REGISTER: valid, no wildcard; a short
//     topic id: two octets, no wildcard);
//   - every datagram the broker sends decodes (it never sends malformed bytes), and goes to
//     one of the peers, or is a broadcast ADVERTISE;
//   - an address that never completed a CONNECT is sent at most 3x the octets it sent;
//   - state stays within the configured limits and no gauge goes negative;
//   - Tick leaves nothing due: afterwards Deadline is zero or in the future;
//   - every output carries the Mark of an input already seen (or 0);
//   - nothing durable goes unrecorded: the journal records the calls emitted so far,
//     restored into a fresh engine, give the live engine's durable state, and so does a
//     snapshot of it (checkDurable, durable_fuzz_test.go).
//
// The input is a sequence of records: ctrl, advance, length (one octet, two when ctrl's
// bit 7 is set), datagram. ctrl's bits 0-1 choose the peer (3 is a node behind a
// forwarder: its datagrams are encapsulated); advance moves the clock first (1-127: that
// many 100 ms, 128-255: (advance-127) x 10 s), with Tick called at every deadline on the
// way. A zero-length datagram is a pure passage of time.
func FuzzEngine(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) { runEngine(t, in, false) })
}

func runEngine(t testing.TB, in []byte, tracing bool) *engineHarness {
	h := newEngineHarness(t)
	h.tracing = tracing
	for len(in) >= 3 {
		ctrl, adv := in[0], in[1]
		n, hdr := int(in[2]), 3
		if ctrl&0x80 != 0 {
			if len(in) < 4 {
				break
			}
			n, hdr = (int(in[2])<<8|int(in[3]))&0x3ff, 4
		}
		in = in[hdr:]
		if n > len(in) {
			n = len(in)
		}
		h.step(int(ctrl&3), adv, in[:n])
		in = in[n:]
	}
	return h
}

var fuzzPeers = [4]netip.AddrPort{
	netip.MustParseAddrPort("10.0.0.1:1000"),
	netip.MustParseAddrPort("10.0.0.2:1000"),
	netip.MustParseAddrPort("[2001:db8::3]:1000"),
	netip.MustParseAddrPort("10.0.0.9:1883"), // a forwarder
}

var fuzzNode = []byte{0x0e, 0x03}

func fuzzConfig() broker.Config {
	return broker.Config{
		GatewayID:          5,
		AdvertiseInterval:  15 * time.Minute,
		RetryInterval:      10 * time.Second,
		MaxRetries:         2,
		Predefined:         map[uint16]string{1: "p/1", 2: "p/2"},
		MaxClients:         3,
		MaxTopics:          8,
		MaxTopicsPerClient: 4,
		MaxSubsPerClient:   3,
		MaxQueuedPerClient: 4,
		MaxSleepBuffer:     2,
		MaxQoS2Incoming:    2,
		MaxPayload:         64,
		MaxRetained:        4,
		MaxHeldPerClient:   2,
		MaxHoldTime:        20 * time.Second,
		Seed:               1,
		Persist:            true,
	}
}

type engineHarness struct {
	t    testing.TB
	cfg  broker.Config
	b    *broker.Broker
	now  time.Time
	out  []broker.Datagram
	mark uint64

	rx, tx    map[netip.AddrPort]int
	connected map[netip.AddrPort]bool // sent a CONNACK accepted at some point

	// Durability check (durable_fuzz_test.go): the journal records taken after every
	// call, as the daemon commits them; the durable state they restore to, for
	// restoredLen octets of them; the last live state a snapshot was checked for.
	log                   []byte
	restored, snapshotted []string
	restoredLen           int
	lastInput             string // the last datagram received, described (failure messages)

	record  []byte // the records of the steps taken (seed generation)
	last    [4][]packet.Packet
	trace   []byte // every output, when tracing (determinism)
	tracing bool
}

func newEngineHarness(t testing.TB) *engineHarness {
	cfg := fuzzConfig()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &engineHarness{
		t: t, cfg: cfg, b: b, now: time.Unix(1_700_000_000, 0),
		rx: map[netip.AddrPort]int{}, tx: map[netip.AddrPort]int{}, connected: map[netip.AddrPort]bool{},
	}
}

func advance(a byte) time.Duration {
	switch {
	case a == 0:
		return 0
	case a < 128:
		return time.Duration(a) * 100 * time.Millisecond
	}
	return time.Duration(a-127) * 10 * time.Second
}

// step is one record: advance the clock (ticking at every deadline on the way), then
// deliver d from peer c (wrapped for the forwarder when c is 3).
func (h *engineHarness) step(c int, adv byte, d []byte) {
	h.t.Helper()
	target := h.now.Add(advance(adv))
	for i := 0; ; i++ {
		dl := h.b.Deadline()
		if dl.IsZero() || dl.After(target) {
			break
		}
		if i > 10000 {
			h.t.Fatalf("more than 10000 deadlines in one step")
		}
		if dl.After(h.now) {
			h.now = dl
		}
		h.out = h.b.Tick(h.now, h.out[:0])
		h.check(h.out, true)
		h.checkDurable("Tick")
		if dl := h.b.Deadline(); !dl.IsZero() && !dl.After(h.now) {
			h.t.Fatalf("after Tick(%v), Deadline is %v: something due was left undone", h.now, dl)
		}
	}
	h.now = target
	for i := range h.last {
		h.last[i] = h.last[i][:0]
	}
	if len(d) == 0 {
		return
	}
	addr := fuzzPeers[c]
	if c == 3 {
		d = append(packet.AppendEncapsulationHeader(nil, 1, fuzzNode), d...)
	}
	h.rx[addr] += len(d)
	h.mark++
	h.lastInput = describe(c, d)
	h.out = h.b.Receive(h.now, broker.Datagram{Addr: addr, B: d, Mark: h.mark}, h.out[:0])
	h.check(h.out, false)
	h.checkDurable("Receive")
}

func (h *engineHarness) check(out []broker.Datagram, tick bool) {
	h.t.Helper()
	for _, d := range out {
		if h.tracing {
			h.trace = fmt.Appendf(h.trace, "%v %v %x %d\n", h.now.UnixNano(), d.Addr, d.B, d.Mark)
		}
		var p packet.Packet
		if err := packet.Decode(d.B, &p); err != nil {
			h.t.Fatalf("broker sent malformed %x to %v: %v", d.B, d.Addr, err)
		}
		if d.Mark > h.mark {
			h.t.Fatalf("output mark %d from the future (last input %d)", d.Mark, h.mark)
		}
		switch {
		case p.Type == packet.REGISTER && topic.ValidateName(string(p.TopicName)) != nil:
			h.t.Fatalf("broker registered %q, not a topic name", p.TopicName)
		case p.Type == packet.PUBLISH && p.Flags.TopicIDType() == packet.TopicShort && !topic.IsShortName(topic.ShortName(p.TopicID)):
			h.t.Fatalf("broker published on short topic %q", topic.ShortName(p.TopicID))
		}
		if d.IsBroadcast() {
			if p.Type != packet.ADVERTISE || !tick {
				h.t.Fatalf("broadcast %v (from Tick: %v): only ADVERTISE, only on the timer", p.Type, tick)
			}
			continue
		}
		peer := -1
		for i, a := range fuzzPeers {
			if a == d.Addr {
				peer = i
			}
		}
		if peer < 0 {
			h.t.Fatalf("broker sent %v to %v, which never sent anything", p.Type, d.Addr)
		}
		if peer == 3 && p.Encapsulated && bytes.Equal(p.NodeID, fuzzNode) {
			h.last[3] = append(h.last[3], p)
		} else if peer != 3 || !p.Encapsulated {
			h.last[peer] = append(h.last[peer], p)
		}
		h.tx[d.Addr] += len(d.B)
		if p.Type == packet.CONNACK && p.ReturnCode == packet.Accepted {
			h.connected[d.Addr] = true
		}
		if !h.connected[d.Addr] && h.tx[d.Addr] > 3*h.rx[d.Addr] {
			h.t.Fatalf("%v never completed a CONNECT, sent it %d octets, received %d: amplification", d.Addr, h.tx[d.Addr], h.rx[d.Addr])
		}
	}
	if err := broker.CheckTopicRefs(h.b); err != nil {
		h.t.Fatal(err)
	}
	if err := broker.CheckRetainedIndex(h.b); err != nil {
		h.t.Fatal(err)
	}
	s := h.b.Stats()
	var sessions int64
	for st, n := range s.ClientsByState {
		if n < 0 {
			h.t.Fatalf("clients %v = %d", broker.State(st), n)
		}
		sessions += n
	}
	c := h.cfg
	switch {
	case sessions > int64(c.MaxClients):
		h.t.Fatalf("%d sessions, MaxClients %d", sessions, c.MaxClients)
	case s.Topics < 0 || s.Topics > int64(c.MaxTopics):
		h.t.Fatalf("%d topics, MaxTopics %d", s.Topics, c.MaxTopics)
	case s.Retained < 0 || s.Retained > int64(c.MaxRetained):
		h.t.Fatalf("%d retained, MaxRetained %d", s.Retained, c.MaxRetained)
	case s.Subscriptions < 0 || s.Subscriptions > sessions*int64(c.MaxSubsPerClient):
		h.t.Fatalf("%d subscriptions for %d sessions", s.Subscriptions, sessions)
	case s.Inflight < 0 || s.Inflight > sessions: // InflightWindow 1
		h.t.Fatalf("%d inflight for %d sessions", s.Inflight, sessions)
	case s.Queued < 0 || s.Queued > sessions*int64(c.MaxQueuedPerClient+1): // + a requeued inflight one
		h.t.Fatalf("%d queued for %d sessions", s.Queued, sessions)
	case s.SleepBuffered < 0 || s.SleepBuffered > s.Queued || s.SleepBuffered > sessions*int64(c.MaxSleepBuffer):
		h.t.Fatalf("%d sleep-buffered (%d queued) for %d sessions", s.SleepBuffered, s.Queued, sessions)
	case s.Held < 0 || s.Held > sessions*int64(c.MaxHeldPerClient):
		h.t.Fatalf("%d publications held for %d sessions", s.Held, sessions)
	}
}

// Seed corpus: real flows, recorded as FuzzEngine records by driving the harness, so that
// acknowledgements carry the msg ids the broker really chose. Regenerate with -update.

// send encodes p, takes the step and appends its record.
func (h *engineHarness) send(c int, adv byte, p packet.Packet) []packet.Packet {
	h.t.Helper()
	b := packet.Append(nil, &p)
	if len(b) > 255 {
		h.t.Fatalf("seed datagram of %d octets", len(b))
	}
	h.record = append(h.record, byte(c), adv, byte(len(b)))
	h.record = append(h.record, b...)
	h.step(c, adv, b)
	return h.last[c]
}

func (h *engineHarness) wait(adv byte) {
	h.record = append(h.record, 0, adv, 0)
	h.step(0, adv, nil)
}

// ackAll answers what peer c was just sent, as a conforming client does.
func (h *engineHarness) ackAll(c int, got []packet.Packet) {
	for len(got) > 0 {
		var next []packet.Packet
		for _, p := range got {
			var a packet.Packet
			switch {
			case p.Type == packet.REGISTER:
				a = packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID}
			case p.Type == packet.PUBLISH && p.Flags.QoS() == 1:
				a = pubackPkt(p.TopicID, p.MsgID, 0)
			case p.Type == packet.PUBLISH && p.Flags.QoS() == 2:
				a = ack(packet.PUBREC, p.MsgID)
			case p.Type == packet.PUBREL:
				a = ack(packet.PUBCOMP, p.MsgID)
			default:
				continue
			}
			next = append(next, h.send(c, 0, a)...)
		}
		got = next
	}
}

var engineSeeds = map[string]func(h *engineHarness){
	"pubsub_qos0_1_2": func(h *engineHarness) {
		h.send(0, 0, connectPkt("sub", packet.FlagCleanSession, 60))
		h.ackAll(0, h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 1, TopicName: []byte("a/#")}))
		h.send(1, 1, connectPkt("pub", packet.FlagCleanSession, 60))
		id := h.send(1, 0, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("a/b")})[0].TopicID
		for q := packet.QoS(0); q <= 2; q++ {
			h.ackAll(0, h.send(1, 5, publishPkt(q, packet.TopicNormal, id, uint16(10+q), "m")))
		}
		h.send(1, 0, ack(packet.PUBREL, 12))
		h.send(1, 0, publishPkt(1, packet.TopicNormal, id, 20, "unacked"))
		h.wait(129) // the broker resends with DUP
		h.wait(200) // and gives up: the subscriber is lost
	},
	"sleep_cycle": func(h *engineHarness) {
		h.send(2, 0, connectPkt("sleeper", 0, 30))
		h.send(2, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("s/t")})
		h.send(2, 0, sleepPkt(60))
		h.send(1, 0, connectPkt("pub", packet.FlagCleanSession, 0))
		id := h.send(1, 0, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("s/t")})[0].TopicID
		h.send(1, 10, publishPkt(1, packet.TopicNormal, id, 2, "a"))
		h.send(1, 10, publishPkt(0, packet.TopicNormal, id, 0, "b"))
		h.send(1, 10, publishPkt(1, packet.TopicNormal, id, 3, "c")) // over MaxSleepBuffer
		h.ackAll(2, h.send(2, 130, pingPkt("sleeper")))
		h.wait(135) // past the sleep duration: lost
		h.send(2, 0, pingPkt("sleeper"))
	},
	"will_and_keepalive": func(h *engineHarness) {
		h.send(0, 0, connectPkt("watch", packet.FlagCleanSession, 0))
		h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("will/+")})
		h.send(3, 0, connectPkt("node", packet.FlagCleanSession|packet.FlagWill, 10))
		h.send(3, 0, packet.Packet{Type: packet.WILLTOPIC, Flags: qos(1) | packet.FlagRetain, WillTopic: []byte("will/node")})
		h.send(3, 0, packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("gone")})
		h.send(3, 5, packet.Packet{Type: packet.WILLTOPICUPD, Flags: qos(1), WillTopic: []byte("will/n")})
		h.send(3, 5, packet.Packet{Type: packet.WILLMSGUPD, WillMsg: []byte("really gone")})
		h.wait(128)
		h.ackAll(0, h.last[0])
		h.send(3, 0, pingPkt(""))
	},
	"discovery_qos_minus1_takeover": func(h *engineHarness) {
		h.send(0, 0, packet.Packet{Type: packet.SEARCHGW, Radius2: 1})
		h.send(1, 0, connectPkt("x", 0, 0))
		h.send(1, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1).WithTopicIDType(packet.TopicPredefined), MsgID: 1, TopicID: 1})
		h.send(1, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(0).WithTopicIDType(packet.TopicShort), MsgID: 2, TopicID: 0x6162})
		h.send(0, 0, publishPkt(packet.QoSMinus1, packet.TopicPredefined, 1, 0, "anon"))
		h.send(0, 0, publishPkt(packet.QoSMinus1, packet.TopicShort, 0x6162, 0, "short"))
		h.send(2, 0, connectPkt("x", 0, 0)) // takeover from IPv6
		h.ackAll(2, h.send(0, 0, publishPkt(packet.QoSMinus1, packet.TopicPredefined, 1, 0, "moved")))
		h.send(3, 0, connectPkt("c", packet.FlagCleanSession, 0))
		h.send(0, 0, connectPkt("d", packet.FlagCleanSession, 0)) // MaxClients reached
		h.send(2, 0, packet.Packet{Type: packet.UNSUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicPredefined), MsgID: 3, TopicID: 1})
		h.wait(255)
		h.send(2, 0, disconnectPkt())
	},
	"retained_and_limits": func(h *engineHarness) {
		h.send(0, 0, connectPkt("p", packet.FlagCleanSession, 0))
		for i := range 5 {
			r := h.send(0, 0, packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprint("r/", i))})
			if r[0].ReturnCode == packet.Accepted {
				p := publishPkt(packet.QoS(i%3), packet.TopicNormal, r[0].TopicID, uint16(i+10), "kept")
				p.Flags |= packet.FlagRetain
				h.send(0, 0, p)
			}
		}
		h.send(0, 0, publishPkt(1, packet.TopicNormal, 1, 30, string(make([]byte, 65)))) // over MaxPayload
		h.send(1, 0, connectPkt("s", packet.FlagCleanSession, 0))
		h.ackAll(1, h.send(1, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 1, TopicName: []byte("r/+")}))
		h.send(1, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 2, TopicName: []byte("x")})
		h.send(1, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 3, TopicName: []byte("y/#")}) // over MaxSubsPerClient
		h.send(1, 0, []packet.Packet{{Type: packet.DISCONNECT}}[0])
	},
	// Persistent sessions, for the durability check: deliveries in flight at each
	// handshake position, queued while away, requeued on return.
	"persistent_owed_qos1_2": func(h *engineHarness) {
		h.send(0, 0, connectPkt("ps", 0, 60))
		h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 1, TopicName: []byte("d/#")})
		h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 2, TopicName: []byte("d/x")})
		h.send(1, 0, connectPkt("pub", packet.FlagCleanSession, 60))
		id := h.send(1, 0, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("d/x")})[0].TopicID
		h.send(1, 0, publishPkt(2, packet.TopicNormal, id, 1, "q2"))
		var sent []packet.Packet
		for _, p := range h.last[0] { // the subscriber's share of that step
			if p.Type == packet.PUBLISH {
				sent = append(sent, p)
			}
		}
		h.send(1, 0, ack(packet.PUBREL, 1))
		for _, p := range sent {
			h.send(0, 0, ack(packet.PUBREC, p.MsgID)) // PUBREL due; PUBCOMP never sent
		}
		for i := range 6 { // one waiting for the window, then over MaxQueuedPerClient once away
			h.send(1, 1, publishPkt(1, packet.TopicNormal, id, uint16(10+i), fmt.Sprint("q1-", i)))
		}
		h.send(0, 0, disconnectPkt())
		for i := range 3 {
			h.send(1, 1, publishPkt(2, packet.TopicNormal, id, uint16(20+i), fmt.Sprint("away-", i)))
			h.send(1, 0, ack(packet.PUBREL, uint16(20+i)))
		}
		h.ackAll(0, h.send(0, 5, connectPkt("ps", 0, 60)))
		h.wait(200)
	},
	"persistent_from_clean": func(h *engineHarness) {
		h.send(0, 0, connectPkt("pc", packet.FlagCleanSession, 60))
		h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("e/+")})
		h.send(1, 0, connectPkt("pub", packet.FlagCleanSession, 60))
		id := h.send(1, 0, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("e/1")})[0].TopicID
		for i := range 3 {
			h.send(1, 0, publishPkt(1, packet.TopicNormal, id, uint16(1+i), fmt.Sprint("c-", i)))
		}
		h.send(0, 0, connectPkt("pc", 0, 60)) // the same client id, now persistent
		h.send(0, 0, disconnectPkt())
		h.send(2, 0, connectPkt("pc", 0, 60))
	},
	"persistent_sleep_will": func(h *engineHarness) {
		h.send(2, 0, connectPkt("sw", packet.FlagWill, 30))
		h.send(2, 0, packet.Packet{Type: packet.WILLTOPIC, Flags: qos(1), WillTopic: []byte("w/sw")})
		h.send(2, 0, packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("bye")})
		h.send(2, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("w/+")})
		h.send(2, 0, sleepPkt(100))
		h.send(2, 5, connectPkt("sw", packet.FlagWill, 30)) // will exchange never finished
		h.wait(130)
		h.send(2, 0, connectPkt("sw", 0, 30))
		h.send(2, 0, packet.Packet{Type: packet.WILLTOPICUPD, Flags: qos(2) | packet.FlagRetain, WillTopic: []byte("w/x")})
		h.send(2, 0, packet.Packet{Type: packet.WILLMSGUPD, WillMsg: []byte("gone")})
		h.wait(200) // keep-alive: lost, will published
	},
	"persistent_limits": func(h *engineHarness) {
		// A wildcard subscriber told more topic ids than MaxTopicsPerClient by the
		// broker's REGISTERs; QoS 2 receipts of held publications; a retained will.
		h.send(0, 0, connectPkt("wr", 0, 60))
		h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("r/#")})
		h.send(1, 0, connectPkt("pub", packet.FlagWill, 60))
		h.send(1, 0, packet.Packet{Type: packet.WILLTOPIC, Flags: qos(1) | packet.FlagRetain, WillTopic: []byte("r/will")})
		h.send(1, 0, packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("w")})
		h.send(3, 0, connectPkt("pub2", packet.FlagCleanSession, 60))
		for i := range 6 {
			c := 1 + 2*(i/3) // pub, then pub2: each within MaxTopicsPerClient
			r := h.send(c, 0, packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprint("r/", i))})
			h.send(c, 0, publishPkt(0, packet.TopicNormal, r[0].TopicID, 0, "x"))
			h.ackAll(0, h.last[0])
		}
		h.send(1, 0, packet.Packet{Type: packet.UNSUBSCRIBE, MsgID: 8, TopicName: []byte("nothing")})
		h.send(1, 0, publishPkt(2, packet.TopicShort, 0x722f, 30, "q2 receipt")) // "r/"
		first := append([]packet.Packet(nil), h.last[0]...)
		for i := range 4 { // the subscriber does not answer: its outbox fills
			h.send(1, 0, publishPkt(1, packet.TopicShort, 0x722f, uint16(31+i), fmt.Sprint("f", i)))
		}
		h.send(1, 0, publishPkt(2, packet.TopicShort, 0x722f, 40, "held 1"))
		h.send(1, 0, publishPkt(2, packet.TopicShort, 0x722f, 41, "held 2"))
		h.ackAll(0, first) // room: both held are delivered and their PUBRECs sent
		h.ackAll(0, h.last[0])
		h.wait(150) // the publisher is lost: its will
		h.send(2, 0, connectPkt("late", 0, 60))
		h.ackAll(2, h.send(2, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(2), MsgID: 1, TopicName: []byte("r/will")}))
	},
	"malformed": func(h *engineHarness) {
		for _, b := range [][]byte{{}, {0x02, 0x03}, {0x03, 0x16}, {0x01, 0x00, 0x05, 0x0c, 0}, {0x07, 0x0c, 0x23, 0, 1, 0, 1}, {0x03, 0xfe, 0x01, 0x02, 0x16}} {
			h.record = append(h.record, 1, 1, byte(len(b)))
			h.record = append(h.record, b...)
			h.step(1, 1, b)
		}
	},
}

// TestFuzzEngineSeeds runs the seed flows and checks the corpus files match them.
func TestFuzzEngineSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzEngine")
	for name, flow := range engineSeeds {
		h := newEngineHarness(t)
		flow(h)
		want := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(h.record)) + ")\n")
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale: go test ./broker -run TestFuzzEngineSeeds -update", path)
		}
	}
}

// TestEngineDeterministic: the same input gives the same output, byte for byte — what
// makes a fuzz crash reproducible and a seeded simulation repeatable. Run over the seed
// flows and seeded random mutations of them.
func TestEngineDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var inputs [][]byte
	for _, flow := range engineSeeds {
		h := newEngineHarness(t)
		flow(h)
		inputs = append(inputs, h.record)
		for range 50 {
			m := append([]byte(nil), h.record...)
			for range 1 + rng.IntN(8) {
				m[rng.IntN(len(m))] = byte(rng.Uint32())
			}
			inputs = append(inputs, m)
		}
	}
	for i, in := range inputs {
		a, b := runEngine(t, in, true).trace, runEngine(t, in, true).trace
		if !bytes.Equal(a, b) {
			t.Fatalf("input %d: two runs differ:\n%s\n---\n%s", i, a, b)
		}
	}
}
