package qemu

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
)

// The burst tests are the regression test for tamago v1.26.0's kvm/virtio
// receive queue, which re-offered receive buffers the driver had not read yet:
// after about a thousand datagrams a burst of distinct publishes reached the
// microvm's broker as copies of the last one. Each test boots an image, sends
// preloadPings PINGREQs one at a time (each waits for its PINGRESP, which paces
// them for QEMU's user network), then bursts of burstSize distinct QoS 1
// PUBLISHes back to back (distinct payloads and message ids), and requires that
// every publish gets its own PUBACK, carrying its id, and that a subscriber
// receives every payload, none twice and none that was not sent.
func TestMicrovmBurst(t *testing.T) { testBurst(t, Microvm) }

func TestMX6ULLEVKBurst(t *testing.T) { testBurst(t, MX6ULLEVK) }

func TestUSBArmoryBurst(t *testing.T) { testBurst(t, USBArmory) }

const (
	preloadPings = 2000
	burstSize    = 50
	bursts       = 4
	burstTopic   = "bu" // a short topic name: no REGISTER needed
)

func testBurst(t *testing.T, m Machine) {
	in := bootImage(t, m)
	for _, l := range strings.Split(in.Console(), "\n") {
		if strings.Contains(l, "virtio-net") || strings.Contains(l, "ENET") {
			t.Logf("console: %s", l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The subscriber, with the client library (it PUBACKs what it gets).
	subIn := &inbox{}
	sub, err := client.Dial(ctx, in.Addr.String(), client.Config{ClientID: "burst-sub", RetryInterval: 500 * time.Millisecond,
		Retries: 60, KeepAlive: 10 * time.Minute, OnMessage: subIn.add})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	if _, _, err := sub.Subscribe(ctx, client.Short(burstTopic), 1); err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	// The publisher speaks raw MQTT-SN, so that it can have many publishes in
	// flight (the client library waits for each PUBACK).
	pub := newRawPublisher(t, in.Addr.String())
	if err := pub.connect("burst-pub"); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	lost := 0
	for i := range preloadPings {
		n, err := pub.ping()
		if err != nil {
			t.Fatalf("preload ping %d: %v", i, err)
		}
		lost += n
	}
	t.Logf("%s: %d PINGREQs answered one by one in %v (%d resent after 500 ms without PINGRESP)",
		m.Board, preloadPings, time.Since(t0).Round(time.Millisecond), lost)

	failed := false
	for b := range bursts {
		if !burst(t, m, b, pub, subIn) {
			failed = true
		}
	}
	if failed {
		t.Errorf("%s: a burst was not received intact", m.Board)
	}
}

// burst sends burstSize distinct QoS 1 publishes back to back and checks
// PUBACKs and deliveries; it reports whether all was well.
func burst(t *testing.T, m Machine, b int, pub *rawPublisher, subIn *inbox) bool {
	t.Helper()
	subIn.mu.Lock()
	subIn.msgs = nil
	subIn.mu.Unlock()
	pub.resetAcks()

	ids := make([]uint16, burstSize)
	want := map[string]bool{}
	payload := func(i int) string { return fmt.Sprintf("burst%d-msg%02d", b, i) }
	for i := range burstSize {
		ids[i] = uint16(b*burstSize + i + 1)
		want[payload(i)] = true
	}
	t0 := time.Now()
	for i := range burstSize {
		if err := pub.publish(ids[i], []byte(payload(i)), false); err != nil {
			t.Fatalf("burst %d publish %d: %v", b, i, err)
		}
	}
	sent := time.Since(t0)

	// Whatever is still unacknowledged after a while is resent (with DUP) a few
	// times, as a client would: a lost datagram is then told apart from a wrong one.
	resends := map[uint16]int{}
	var acked time.Duration
	for deadline, attempt := time.Now().Add(5*time.Second), 0; ; time.Sleep(5 * time.Millisecond) {
		acks := pub.acks()
		missing := 0
		for _, id := range ids {
			if len(acks[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			acked = time.Since(t0)
			break
		}
		if time.Now().After(deadline) {
			if attempt == 3 {
				break
			}
			attempt++
			for i, id := range ids {
				if len(acks[id]) == 0 {
					resends[id]++
					pub.publish(id, []byte(payload(i)), true)
				}
			}
			deadline = time.Now().Add(2 * time.Second)
		}
	}
	// Deliveries: all burstSize, or give up after 15 s.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := map[string]bool{}
		for _, p := range subIn.payloads() {
			got[p] = true
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // let any stray extra copy arrive too

	ok := true
	var problems []string
	acks := pub.acks()
	var unacked []string
	for _, id := range ids {
		a := acks[id]
		switch {
		case len(a) == 0:
			unacked = append(unacked, fmt.Sprint(id))
		case len(a) > 1+resends[id]:
			problems = append(problems, fmt.Sprintf("%d PUBACKs for id %d, sent %d times", len(a), id, 1+resends[id]))
		}
		for _, p := range a {
			if p.ReturnCode != packet.Accepted || p.TopicID != shortTopicID(burstTopic) {
				problems = append(problems, fmt.Sprintf("PUBACK for id %d: %v, topic id %#x", id, p.ReturnCode, p.TopicID))
			}
		}
	}
	if len(unacked) > 0 {
		problems = append(problems, fmt.Sprintf("no PUBACK for %d ids: %s", len(unacked), strings.Join(unacked, " ")))
	}
	for id, a := range acks {
		if !slices.Contains(ids, id) {
			problems = append(problems, fmt.Sprintf("%d PUBACKs for id %d, which this burst did not send", len(a), id))
		}
	}
	count := map[string]int{}
	for _, p := range subIn.payloads() {
		count[p]++
	}
	resentPayload := map[string]int{}
	for i, id := range ids {
		resentPayload[payload(i)] = resends[id]
	}
	var dups, stray []string
	for p, n := range count {
		switch {
		case !want[p]:
			stray = append(stray, fmt.Sprintf("%q×%d", p, n))
		case n > 1+resentPayload[p]:
			dups = append(dups, fmt.Sprintf("%s×%d", p, n))
		}
	}
	var missing []string
	for i := range burstSize {
		if count[payload(i)] == 0 {
			missing = append(missing, payload(i))
		}
	}
	sort.Strings(dups)
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d payloads never delivered: %s", len(missing), burstSize, strings.Join(missing, " ")))
	}
	if len(dups) > 0 {
		problems = append(problems, "delivered more often than sent: "+strings.Join(dups, " "))
	}
	if len(stray) > 0 {
		problems = append(problems, "delivered but never sent: "+strings.Join(stray, " "))
	}
	nres := 0
	for _, n := range resends {
		nres += n
	}
	delivered := len(subIn.payloads())
	if len(problems) > 0 {
		ok = false
		t.Errorf("%s burst %d: %d publishes sent in %v, %d PUBACK ids of %d, %d deliveries (%d distinct), %d resent:\n  %s",
			m.Board, b, burstSize, sent.Round(time.Microsecond), countAcked(acks, ids), burstSize, delivered, len(count), nres,
			strings.Join(problems, "\n  "))
	} else {
		t.Logf("%s burst %d: %d distinct QoS 1 publishes sent in %v, all PUBACKed with their own ids in %v (%d resent), %d delivered, all distinct",
			m.Board, b, burstSize, sent.Round(time.Microsecond), acked.Round(time.Microsecond), nres, delivered)
	}
	return ok
}

func countAcked(acks map[uint16][]packet.Packet, ids []uint16) int {
	n := 0
	for _, id := range ids {
		if len(acks[id]) > 0 {
			n++
		}
	}
	return n
}

func shortTopicID(name string) uint16 { return uint16(name[0])<<8 | uint16(name[1]) }

// rawPublisher is a connected MQTT-SN client on its own UDP socket, sending
// PUBLISHes without waiting and collecting whatever comes back.
type rawPublisher struct {
	t    *testing.T
	conn *net.UDPConn
	in   chan packet.Packet // everything but PUBACKs

	mu     sync.Mutex
	pubAck map[uint16][]packet.Packet
}

func newRawPublisher(t *testing.T, addr string) *rawPublisher {
	p := &rawPublisher{t: t, conn: rawConn(t, addr), in: make(chan packet.Packet, 64), pubAck: map[uint16][]packet.Packet{}}
	go p.read()
	return p
}

func (p *rawPublisher) read() {
	buf := make([]byte, 2048)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return // closed by the test's cleanup
		}
		var pk packet.Packet
		if packet.Decode(buf[:n], &pk) != nil {
			continue
		}
		pk = clonePacket(pk)
		if pk.Type == packet.PUBACK {
			p.mu.Lock()
			p.pubAck[pk.MsgID] = append(p.pubAck[pk.MsgID], pk)
			p.mu.Unlock()
			continue
		}
		select {
		case p.in <- pk:
		default:
		}
	}
}

// clonePacket copies the slices Decode left pointing into the read buffer.
func clonePacket(p packet.Packet) packet.Packet {
	p.Data = slices.Clone(p.Data)
	p.ClientID = slices.Clone(p.ClientID)
	p.TopicName = slices.Clone(p.TopicName)
	p.NodeID, p.GwAddr, p.WillTopic, p.WillMsg = nil, nil, nil, nil
	return p
}

func (p *rawPublisher) send(pk *packet.Packet) error {
	_, err := p.conn.Write(packet.Append(nil, pk))
	return err
}

// request sends pk until an answer of type want arrives (every 500 ms, up to 60
// times); it returns how many times it resent.
func (p *rawPublisher) request(pk *packet.Packet, want packet.Type) (packet.Packet, int, error) {
	for attempt := 0; attempt < 60; attempt++ {
		if err := p.send(pk); err != nil {
			return packet.Packet{}, attempt, err
		}
		timer := time.NewTimer(500 * time.Millisecond)
		for waiting := true; waiting; {
			select {
			case r := <-p.in:
				if r.Type == want {
					timer.Stop()
					return r, attempt, nil
				}
			case <-timer.C:
				waiting = false
			}
		}
	}
	return packet.Packet{}, 60, fmt.Errorf("no %v after 60 tries 500 ms apart", want)
}

func (p *rawPublisher) connect(id string) error {
	r, _, err := p.request(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: packet.ProtocolID,
		Duration: 600, ClientID: []byte(id)}, packet.CONNACK)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if r.ReturnCode != packet.Accepted {
		return fmt.Errorf("connect: %v", r.ReturnCode)
	}
	return nil
}

func (p *rawPublisher) ping() (resent int, err error) {
	_, resent, err = p.request(&packet.Packet{Type: packet.PINGREQ}, packet.PINGRESP)
	return resent, err
}

func (p *rawPublisher) publish(id uint16, payload []byte, dup bool) error {
	f := packet.Flags(0).WithQoS(packet.QoS1).WithTopicIDType(packet.TopicShort)
	if dup {
		f |= packet.FlagDUP
	}
	return p.send(&packet.Packet{Type: packet.PUBLISH, Flags: f, TopicID: shortTopicID(burstTopic), MsgID: id, Data: payload})
}

func (p *rawPublisher) resetAcks() {
	p.mu.Lock()
	p.pubAck = map[uint16][]packet.Packet{}
	p.mu.Unlock()
}

func (p *rawPublisher) acks() map[uint16][]packet.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[uint16][]packet.Packet, len(p.pubAck))
	for k, v := range p.pubAck {
		m[k] = slices.Clone(v)
	}
	return m
}
