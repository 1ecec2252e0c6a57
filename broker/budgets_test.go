package broker_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/broker/packet"
)

// Attack 3: topic names and filters past max_topic_length or max_topic_levels are
// refused with 0x03 (a property of the request: "congestion" would invite a retry that
// fails for ever); those within pass.
func TestTopicLengthAndDepthLimits(t *testing.T) {
	n := newNet(t, broker.Config{MaxTopicLength: 64, MaxTopicLevels: 4})
	c := n.NewClient("c", addr1)
	c.Connect(t, brokertest.ConnectOptions{})
	for _, tc := range []struct {
		name string
		rc   packet.ReturnCode
	}{
		{strings.Repeat("x", 64), packet.Accepted},
		{strings.Repeat("x", 65), packet.NotSupported},
		{"a/b/c/d", packet.Accepted},
		{"a/b/c/d/e", packet.NotSupported},
		{strings.Repeat("/", 40), packet.NotSupported},
	} {
		c.Send(packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte(tc.name)})
		c.Expect(t, packet.REGACK, brokertest.RC(tc.rc))
		if got := c.Subscribe(t, tc.name, 1); got.ReturnCode != tc.rc {
			t.Errorf("SUBSCRIBE %d octets: %v, want %v", len(tc.name), got.ReturnCode, tc.rc)
		}
	}
	if got := c.Subscribe(t, "a/+/c/#", 1); got.ReturnCode != packet.Accepted {
		t.Errorf("a 4-level filter: %v", got.ReturnCode)
	}
	if got := c.Subscribe(t, "a/+/c/d/#", 1); got.ReturnCode != packet.NotSupported {
		t.Errorf("a 5-level filter: %v", got.ReturnCode)
	}
	if s := n.Stats(); s.LimitsHit[broker.LimitTopicLength] != 7 || s.Subscriptions != 3 {
		t.Errorf("topic_length limit hit %d times, %d subscriptions", s.LimitsHit[broker.LimitTopicLength], s.Subscriptions)
	}
	// A will topic past the limit fails the CONNECT.
	w := n.NewClient("w", addr2)
	w.Send(connectPkt("w", packet.FlagCleanSession|packet.FlagWill, 60))
	w.Expect(t, packet.WILLTOPICREQ)
	w.Send(packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("a/b/c/d/e")})
	w.Expect(t, packet.CONNACK, brokertest.RC(packet.NotSupported))
}

// Attack 1: a SUBSCRIBE that would grow the session record past what the journal can
// read back gets SUBACK congestion; what was acknowledged restores whole.
func TestSessionRecordBoundRefusesSubscribe(t *testing.T) {
	cfg := broker.Config{Persist: true, AdvertiseInterval: -1, MaxAmplification: -1, MaxTopicLength: 4000, MaxSubsPerClient: 1000}
	bound := broker.SessionRecordReserve(cfg) + 40000
	defer broker.SetMaxSessionRecord(bound)()
	h := newPersistHarnessConfig(t, cfg, nil)
	sub := packetAddr(addr1)
	h.send(sub, connectPkt("big", 0, 60))
	accepted, congested := 0, 0
	for i := 0; i < 30; i++ {
		f := fmt.Sprintf("%03d/%s/#", i, strings.Repeat("f", 3000))
		got := h.send(sub, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: uint16(i + 1), TopicName: []byte(f)})
		switch got[0].ReturnCode {
		case packet.Accepted:
			accepted++
		case packet.Congestion:
			congested++
		default:
			t.Fatalf("SUBACK %v", got[0].ReturnCode)
		}
	}
	if accepted != 13 || congested != 17 {
		t.Fatalf("%d accepted, %d congestion; want 13 and 17 under a %d-octet bound", accepted, congested, bound)
	}
	if n := h.b.Stats().LimitsHit[broker.LimitSessionBytes]; n != 17 {
		t.Errorf("session_bytes limit hit %d times", n)
	}
	for off := 0; off < len(h.log); {
		_, body, n, err := journal.Next(h.log[off:])
		if err != nil || len(body) > bound {
			t.Fatalf("record at %d: %d octets (bound %d), err %v", off, len(body), bound, err)
		}
		off += n
	}
	b2, _ := broker.New(cfg)
	if rep := b2.Restore(h.now, h.log); rep.Subscriptions != 13 || rep.Dropped() != 0 || rep.Undecodable != 0 {
		t.Fatalf("restore: %+v", rep)
	}
}

// Attack 7: restore skips what does not decode, keeps what follows, applies limits.
func TestRestoreSkipsUndecodableAndAppliesLimits(t *testing.T) {
	cfg := broker.Config{Persist: true, AdvertiseInterval: -1, MaxAmplification: -1}
	h := newPersistHarnessConfig(t, cfg, nil)
	pub := packetAddr(addr2)
	h.send(pub, connectPkt("pub", packet.FlagCleanSession, 60))
	reg := h.send(pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("t")})
	var log []byte
	for i := 0; i < 6; i++ {
		a := packetAddr(fmt.Sprintf("10.0.1.%d:1000", i+1))
		id := fmt.Sprintf("s%d", i)
		h.send(a, connectPkt(id, 0, 60))
		h.send(a, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("t")})
		h.send(a, disconnectPkt())
		if i == 2 {
			// A record with a valid checksum whose body does not decode (a bug, an
			// older format), then one damaged on disk: both skipped, not fatal.
			h.log = journal.AppendRecord(h.log, journal.KindSession, []byte{0, 0, 0, 9, 'x'})
			rec := journal.AppendRecord(nil, journal.KindRetain, []byte("\x00\x00\x00\x01r\x01\x00\x00\x00\x01v"))
			rec[12] ^= 0x40
			h.log = append(h.log, rec...)
		}
	}
	for i := 0; i < 5; i++ {
		h.send(pub, publishPkt(1, packet.TopicNormal, reg[0].TopicID, uint16(10+i), fmt.Sprintf("m%d", i)))
	}
	log = h.log

	full, _ := broker.New(cfg)
	rep := full.Restore(h.now, log)
	if rep.Undecodable != 2 || rep.Sessions != 6 || rep.Messages != 30 || rep.Dropped() != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	limited, _ := broker.New(broker.Config{Persist: true, AdvertiseInterval: -1, MaxClients: 4, MaxQueuedPerClient: 3})
	rep = limited.Restore(h.now, log)
	// Each session is owed at most max_queued_per_client + the in-flight window (1).
	if rep.Sessions != 4 || rep.DroppedSessions != 2 || rep.Messages != 16 || rep.DroppedMessages != 14 {
		t.Fatalf("restore under max_clients 4, max_queued_per_client 3: %+v", rep)
	}
	if _, total := clients(limited.Stats()); total != 4 {
		t.Fatalf("%d sessions restored under max_clients 4", total)
	}
	if err := broker.CheckTopicRefs(limited); err != nil {
		t.Fatal(err)
	}
}

// Attack 4: topic ids come back when nothing uses them, and one client cannot take
// the id space.
func TestTopicIDsComeBack(t *testing.T) {
	n := newNet(t, broker.Config{MaxTopics: 10, MaxTopicsPerClient: 6})
	a := n.NewClient("a", addr1)
	a.Connect(t, brokertest.ConnectOptions{})
	for i := 0; i < 7; i++ {
		rc := packet.Accepted
		if i == 6 {
			rc = packet.Congestion // max_topics_per_client
		}
		a.Send(packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprintf("a/%d", i))})
		a.Expect(t, packet.REGACK, brokertest.RC(rc))
	}
	b := n.NewClient("b", addr2)
	b.Connect(t, brokertest.ConnectOptions{})
	for i := 0; i < 4; i++ {
		b.Register(t, fmt.Sprintf("b/%d", i))
	}
	b.Send(packet.Packet{Type: packet.REGISTER, MsgID: 99, TopicName: []byte("b/full")})
	b.Expect(t, packet.REGACK, brokertest.RC(packet.Congestion)) // max_topics: 6 + 4
	// A retained message holds its topic's id; the client's leaving frees the rest.
	a.Publish(0, packet.TopicNormal, 1, "kept", true)
	a.Send(disconnectPkt())
	a.Expect(t, packet.DISCONNECT)
	if s := n.Stats(); s.Topics != 5 || s.TopicsFreed != 5 {
		t.Fatalf("after the client left: %d topics, %d freed; want 5 and 5", s.Topics, s.TopicsFreed)
	}
	c := n.NewClient("c", addr3)
	c.Connect(t, brokertest.ConnectOptions{})
	for i := 0; i < 5; i++ {
		c.Register(t, fmt.Sprintf("c/%d", i)) // the 5 freed ids, for a newcomer
	}
	if err := broker.CheckTopicRefs(n.Broker); err != nil {
		t.Fatal(err)
	}
}

// An id freed and reused while a delivery waited under it: the delivery goes out
// under a fresh REGISTER naming its own topic, never under the other name.
func TestFreedTopicIDReusedWhileQueued(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr1)
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true, KeepAlive: 600})
	sub.Subscribe(t, "a/#", 1)
	sub.Send(disconnectPkt())
	sub.Expect(t, packet.DISCONNECT)
	pub := n.NewClient("pub", addr2)
	pub.Connect(t, brokertest.ConnectOptions{})
	id := pub.Register(t, "a/x")
	pub.Publish(1, packet.TopicNormal, id, "owed", false)
	pub.Expect(t, packet.PUBACK, brokertest.RC(packet.Accepted))
	pub.Send(disconnectPkt()) // frees a/x's id: only pub was told it
	pub.Expect(t, packet.DISCONNECT)
	other := n.NewClient("other", addr3)
	other.Connect(t, brokertest.ConnectOptions{})
	if got := other.Register(t, "b/y"); got != id {
		t.Fatalf("freed id %d not reused (got %d)", id, got)
	}
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true, KeepAlive: 600})
	reg := sub.Expect(t, packet.REGISTER, brokertest.Name("a/x"))
	if reg.TopicID == id {
		t.Fatalf("a/x registered under %d, which is b/y's now", id)
	}
	sub.Send(packet.Packet{Type: packet.REGACK, TopicID: reg.TopicID, MsgID: reg.MsgID})
	sub.Expect(t, packet.PUBLISH, brokertest.Data("owed"), brokertest.TopicID(reg.TopicID))
	if err := broker.CheckTopicRefs(n.Broker); err != nil {
		t.Fatal(err)
	}
}

// jHarness drives a journaling broker and keeps its log, as the hosted driver does.
type jHarness struct {
	t   *testing.T
	b   *broker.Broker
	log []byte
	now time.Time
}

func newPersistHarnessConfig(t *testing.T, cfg broker.Config, log []byte) *jHarness {
	t.Helper()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &jHarness{t: t, b: b, now: time.Unix(5000, 0)}
	b.Restore(h.now, log)
	h.log = append(append([]byte(nil), log...), b.TakeJournal()...)
	return h
}

func (h *jHarness) send(from netip.AddrPort, p packet.Packet) []packet.Packet {
	h.t.Helper()
	out := h.b.Receive(h.now, broker.Datagram{Addr: from, B: packet.Append(nil, &p)}, nil)
	h.log = append(h.log, h.b.TakeJournal()...)
	var got []packet.Packet
	for _, d := range out {
		var q packet.Packet
		if err := packet.Decode(bytes.Clone(d.B), &q); err != nil {
			h.t.Fatalf("broker sent malformed %x: %v", d.B, err)
		}
		got = append(got, q)
	}
	return got
}

func packetAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Attack 5: one address cannot take every client slot; half-open will exchanges are
// bounded and time out; silence (keep-alive 0 included) ends at max_keepalive.
func TestClientSlotsComeBack(t *testing.T) {
	n := newNet(t, broker.Config{MaxClientsPerAddress: 3, MaxConnecting: 2, ConnectTimeout: 5 * time.Second, MaxKeepAlive: time.Minute})
	var first *brokertest.Client
	for i := 0; i < 4; i++ {
		c := n.NewClient(fmt.Sprint("a", i), fmt.Sprintf("10.0.0.1:%d", 2000+i))
		if i == 0 {
			first = c
		}
		c.Send(connectPkt(c.Name, packet.FlagCleanSession, 0))
		rc := packet.Accepted
		if i == 3 {
			rc = packet.Congestion
		}
		c.Expect(t, packet.CONNACK, brokertest.RC(rc))
	}
	// Another address is not affected; reconnecting from a port already counted is.
	other := n.NewClient("other", addr2)
	other.Connect(t, brokertest.ConnectOptions{KeepAlive: 30})
	first.Connect(t, brokertest.ConnectOptions{})

	// Half-open will exchanges: MaxConnecting at once, then congestion until they end.
	for i := 0; i < 3; i++ {
		h := n.NewClient(fmt.Sprint("h", i), fmt.Sprintf("10.0.5.%d:1000", i+1))
		h.Send(connectPkt(h.Name, packet.FlagCleanSession|packet.FlagWill, 60))
		if i < 2 {
			h.Expect(t, packet.WILLTOPICREQ)
		} else {
			h.Expect(t, packet.CONNACK, brokertest.RC(packet.Congestion))
		}
	}
	n.Advance(6 * time.Second) // ConnectTimeout: the two are abandoned
	late := n.NewClient("late", "10.0.5.9:1000")
	late.Connect(t, brokertest.ConnectOptions{Will: true, WillTopic: "w", WillMsg: "x", KeepAlive: 30})
	if s := n.Stats(); s.LimitsHit[broker.LimitClientsPerAddress] != 1 || s.LimitsHit[broker.LimitConnecting] != 1 {
		t.Errorf("limits hit: per address %d, connecting %d", s.LimitsHit[broker.LimitClientsPerAddress], s.LimitsHit[broker.LimitConnecting])
	}
	// The silent clients of 10.0.0.1 (keep-alive 0) are lost after max_keepalive
	// (1 min, +10%); the ones that ping stay.
	for i := 0; i < 8; i++ {
		n.Advance(10 * time.Second)
		other.Send(pingPkt(""))
		late.Send(pingPkt(""))
	}
	if _, total := clients(n.Stats()); total != 2 {
		t.Errorf("%d sessions after 80 s, want the 2 that kept talking", total)
	}
	fresh := n.NewClient("fresh", "10.0.0.1:3000")
	fresh.Connect(t, brokertest.ConnectOptions{})
}
