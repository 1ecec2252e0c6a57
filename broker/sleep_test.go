package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestKeepAliveExpiry(t *testing.T) {
	for _, tc := range []struct {
		keepAlive uint16
		lostAt    time.Duration // keep-alive plus the grace: +50% under a minute, +10% above
	}{
		{10, 15 * time.Second},
		{40, 60 * time.Second},
		{60, 66 * time.Second},
		{600, 660 * time.Second},
	} {
		t.Run(fmt.Sprint(tc.keepAlive, "s"), func(t *testing.T) {
			n := newNet(t, broker.Config{})
			w := willWatcher(t, n, "will/#")
			c := n.NewClient("c1", addr1)
			c.Connect(t, brokertest.ConnectOptions{KeepAlive: tc.keepAlive, Will: true, WillTopic: "will/c1", WillMsg: "lost"})
			n.Advance(tc.lostAt - time.Millisecond)
			if len(w.Deliveries) != 0 {
				t.Fatalf("lost before %v", tc.lostAt)
			}
			wantState(t, n, broker.StateActive, 2)
			n.Advance(time.Millisecond)
			if d := w.DeliveredData(); len(d) != 1 || d[0] != "lost" {
				t.Fatalf("at %v: will %q", tc.lostAt, d)
			}
			if _, total := clients(n.Stats()); total != 1 {
				t.Errorf("sessions = %d, want only the watcher's", total)
			}
		})
	}
}

func TestKeepAliveRefreshedByTraffic(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c := n.NewClient("c1", addr1)
	c.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "will/c1", WillMsg: "lost"})
	n.Advance(14 * time.Second)
	c.Send(pingPkt(""))
	c.Expect(t, packet.PINGRESP)
	n.Advance(14 * time.Second)
	c.Send(publishPkt(0, packet.TopicShort, 0x6162, 0, "x")) // any message is a sign of life
	n.Advance(14 * time.Second)
	c.SendRaw([]byte{0x03, 0x16}) // a malformed one is not
	n.Advance(time.Second)
	if len(w.Deliveries) != 1 {
		t.Fatalf("will deliveries %d at t=%v, want 1 (lost 15 s after the PUBLISH)", len(w.Deliveries), brokertest.Since(n.Now()))
	}
}

func TestKeepAlivePersistentSessionLostThenResumed(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true, KeepAlive: 10})
	sub.Subscribe(t, "a/b", 1)
	n.Advance(15 * time.Second)
	wantState(t, n, broker.StateLost, 1)
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	pub.Publish(1, packet.TopicNormal, pub.Register(t, "a/b"), "kept", false)
	sub.Send(pingPkt(""))
	sub.Expect(t, packet.DISCONNECT) // lost: it must CONNECT again
	sub.Connect(t, brokertest.ConnectOptions{Persistent: true, KeepAlive: 10})
	p := sub.Expect(t, packet.PUBLISH, brokertest.Data("kept"))
	sub.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	wantState(t, n, broker.StateLost, 0)
	n.CheckQuiescent(t)
}

// sleeper connects a scripted client subscribed to "s/t" at QoS 1, with a will, and puts
// it to sleep for 60 s; pub has s/t registered.
func sleeper(t *testing.T, n *brokertest.Net, persistent bool) (c, pub *brokertest.Client, id uint16) {
	t.Helper()
	c = n.NewClient("sleeper", addr2)
	c.Connect(t, brokertest.ConnectOptions{Persistent: persistent, KeepAlive: 30, Will: true, WillTopic: "will/sleeper", WillMsg: "zzz"})
	c.Subscribe(t, "s/t", 1)
	pub = n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{})
	id = pub.Register(t, "s/t")
	c.Send(sleepPkt(60))
	if p := c.Expect(t, packet.DISCONNECT); p.HasDuration {
		t.Fatalf("sleep acknowledged with %s", brokertest.Describe(&p))
	}
	wantState(t, n, broker.StateAsleep, 1)
	return c, pub, id
}

func TestSleepBuffersAndFlushesOnPing(t *testing.T) {
	n := newNet(t, broker.Config{MaxSleepBuffer: 3})
	c, pub, id := sleeper(t, n, false)
	for i := range 5 {
		pub.Send(publishPkt(1, packet.TopicNormal, id, uint16(i+1), fmt.Sprint("m", i)))
	}
	c.ExpectNothing(t)
	s := n.Stats()
	if s.SleepBuffered != 3 || s.Queued != 3 || s.Drops[broker.DropSleepBufferFull] != 2 || s.LimitsHit[broker.LimitSleepBuffer] != 2 {
		t.Fatalf("sleep-buffered=%d queued=%d dropped=%d limit=%d, want 3, 3, 2, 2",
			s.SleepBuffered, s.Queued, s.Drops[broker.DropSleepBufferFull], s.LimitsHit[broker.LimitSleepBuffer])
	}
	n.Advance(30 * time.Second)
	c.Send(pingPkt("sleeper"))
	wantState(t, n, broker.StateAwake, 1)
	for i := range 3 {
		p := c.Expect(t, packet.PUBLISH, brokertest.Data(fmt.Sprint("m", i)), brokertest.QoS(1))
		c.ExpectNothing(t) // one in flight: the next waits for the PUBACK
		c.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	}
	c.Expect(t, packet.PINGRESP)
	c.ExpectNothing(t)
	wantState(t, n, broker.StateAsleep, 1)
	if s := n.Stats(); s.SleepBuffered != 0 || s.Queued != 0 || s.Inflight != 0 {
		t.Fatalf("after the flush: sleep-buffered=%d queued=%d inflight=%d", s.SleepBuffered, s.Queued, s.Inflight)
	}
	// Asleep again, with a fresh sleep timer from the PINGRESP: not lost at 66 s from the
	// DISCONNECT, lost 66 s after the wake-up.
	n.Advance(65 * time.Second)
	wantState(t, n, broker.StateAsleep, 1)
	n.Advance(time.Second)
	wantState(t, n, broker.StateAsleep, 0)
}

func TestSleepQoS0FlushedTogether(t *testing.T) {
	n := newNet(t, broker.Config{})
	c, pub, id := sleeper(t, n, false)
	for i := range 3 {
		pub.Send(publishPkt(0, packet.TopicNormal, id, 0, fmt.Sprint("m", i)))
	}
	c.Send(pingPkt("sleeper"))
	for i := range 3 {
		c.Expect(t, packet.PUBLISH, brokertest.Data(fmt.Sprint("m", i)), brokertest.QoS(0))
	}
	c.Expect(t, packet.PINGRESP)
	wantState(t, n, broker.StateAsleep, 1)
	// Nothing buffered: PINGRESP at once.
	c.Send(pingPkt("sleeper"))
	c.Expect(t, packet.PINGRESP)
	c.ExpectNothing(t)
	wantState(t, n, broker.StateAsleep, 1)
}

func TestSleepTimerExpiryLosesClient(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	_, _, _ = sleeper(t, n, false)
	n.Advance(66*time.Second - time.Millisecond) // 60 s + 10%
	if len(w.Deliveries) != 0 {
		t.Fatal("lost early")
	}
	n.Advance(time.Millisecond)
	if d := w.DeliveredData(); len(d) != 1 || d[0] != "zzz" {
		t.Fatalf("will: %q", d)
	}
	wantState(t, n, broker.StateAsleep, 0)
	n.CheckQuiescent(t)
}

func TestSleepingClientKeepAliveIsSuspended(t *testing.T) {
	// Keep-alive 30 s, asleep 60 s: the keep-alive must not fire while asleep.
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c, _, _ := sleeper(t, n, false)
	n.Advance(50 * time.Second)
	c.Send(pingPkt("sleeper"))
	c.Expect(t, packet.PINGRESP)
	n.Advance(50 * time.Second)
	if len(w.Deliveries) != 0 {
		t.Fatalf("a sleeping client was lost to its keep-alive: %q", w.DeliveredData())
	}
}

func TestSleepWakeByConnect(t *testing.T) {
	n := newNet(t, broker.Config{})
	c, pub, id := sleeper(t, n, false)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "buffered"))
	c.Send(connectPkt("sleeper", 0, 30)) // CleanSession=0: keep the buffer
	c.Expect(t, packet.CONNACK, brokertest.RC(packet.Accepted))
	p := c.Expect(t, packet.PUBLISH, brokertest.Data("buffered"))
	c.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	wantState(t, n, broker.StateActive, 2)
	n.CheckQuiescent(t)
}

func TestSleepThenDisconnect(t *testing.T) {
	n := newNet(t, broker.Config{})
	w := willWatcher(t, n, "will/#")
	c, pub, id := sleeper(t, n, false)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "buffered"))
	c.Send(disconnectPkt())
	c.Expect(t, packet.DISCONNECT)
	n.Advance(time.Hour)
	if len(w.Deliveries) != 0 {
		t.Fatal("DISCONNECT from sleep must not publish the will")
	}
	if _, total := clients(n.Stats()); total != 2 {
		t.Fatalf("sessions = %d", total)
	}
	n.CheckQuiescent(t)
}

func TestSleepPingWithUnknownClientID(t *testing.T) {
	n := newNet(t, broker.Config{})
	c := n.NewClient("c", addr1)
	c.Send(pingPkt("nobody"))
	c.Expect(t, packet.DISCONNECT)
}

func TestSleepPersistentRequeueKeepsGaugesExact(t *testing.T) {
	// A persistent sleeper wakes, gets a buffered QoS 1 message, and reconnects before
	// acknowledging it: the message is requeued and delivered again. Every gauge must
	// come back to zero.
	n := newNet(t, broker.Config{})
	c, pub, id := sleeper(t, n, true)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "a"))
	pub.Send(publishPkt(1, packet.TopicNormal, id, 2, "b"))
	c.Send(pingPkt("sleeper"))
	first := c.Expect(t, packet.PUBLISH, brokertest.Data("a"))
	c.Send(connectPkt("sleeper", 0, 30))
	c.Expect(t, packet.CONNACK)
	p := c.Expect(t, packet.PUBLISH, brokertest.Data("a"), brokertest.DUP(true), brokertest.MsgID(first.MsgID))
	c.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	p = c.Expect(t, packet.PUBLISH, brokertest.Data("b"))
	c.Send(pubackPkt(p.TopicID, p.MsgID, 0))
	s := n.Stats()
	if s.SleepBuffered != 0 || s.Queued != 0 || s.Inflight != 0 {
		t.Fatalf("gauges: sleep-buffered=%d queued=%d inflight=%d, want 0", s.SleepBuffered, s.Queued, s.Inflight)
	}
}

func TestRequireSameAddress(t *testing.T) {
	n := newNet(t, broker.Config{RequireSameAddress: true})
	c, pub, id := sleeper(t, n, true)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "buffered"))
	spoof := n.NewClient("spoof", addr4)
	spoof.Send(pingPkt("sleeper"))
	spoof.ExpectNothing(t)
	spoof.Send(connectPkt("sleeper", 0, 30))
	spoof.Expect(t, packet.CONNACK, brokertest.RC(packet.NotSupported))
	if d := n.Stats().Drops[broker.DropDenied]; d != 2 {
		t.Errorf("Drops[denied] = %d", d)
	}
	c.Send(pingPkt("sleeper"))
	c.Expect(t, packet.PUBLISH, brokertest.Data("buffered"))
}

func TestSleepWakeFromNewAddress(t *testing.T) {
	// NAT rebinding while asleep: a PINGREQ with the ClientId from another address wakes
	// the session there, resending what was in flight; what the new address gets is
	// bounded until it proves itself (amplification.go).
	n := newNet(t, broker.Config{MaxAmplification: 3})
	c, pub, id := sleeper(t, n, false)
	c.Send(pingPkt("sleeper")) // awake: nothing buffered
	c.Expect(t, packet.PINGRESP)
	pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "m"))
	moved := n.NewClient("moved", addr4)
	moved.Send(pingPkt("sleeper"))
	got := moved.Drain()
	if len(got) == 0 {
		t.Fatal("nothing sent to the new address")
	}
	if moved.BytesReceived > 3*moved.BytesSent {
		t.Fatalf("%d octets to an unproven address that sent %d", moved.BytesReceived, moved.BytesSent)
	}
	// Answering what it got proves the address; then the message comes.
	for _, r := range got {
		switch p := r.Packet; p.Type {
		case packet.REGISTER:
			moved.Send(packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
		case packet.PUBLISH:
			moved.Send(pubackPkt(p.TopicID, p.MsgID, 0))
		}
	}
	for _, r := range moved.Drain() {
		if p := r.Packet; p.Type == packet.PUBLISH {
			moved.Send(pubackPkt(p.TopicID, p.MsgID, 0))
		}
	}
	moved.Drain()
	n.CheckQuiescent(t)
	c.Send(pingPkt(""))
	c.Expect(t, packet.DISCONNECT) // the old address lost the session
}

func TestSleepPingWithoutClientIDWakes(t *testing.T) {
	n := newNet(t, broker.Config{})
	c, pub, id := sleeper(t, n, false)
	pub.Send(publishPkt(0, packet.TopicNormal, id, 0, "m"))
	c.Send(pingPkt("")) // from its own address, without the ClientId
	c.Expect(t, packet.PUBLISH, brokertest.Data("m"))
	c.Expect(t, packet.PINGRESP)
	wantState(t, n, broker.StateAsleep, 1)
}

func TestAwakeClientThatStopsAnsweringIsLost(t *testing.T) {
	// Awake but never acknowledging the flush: the client is lost by whichever runs out
	// first, its keep-alive (30 s + 50%) or its sleep timer (60 s + 10%, from the sleep).
	for _, tc := range []struct {
		keepAlive uint16
		lostAt    time.Duration
	}{{30, 45 * time.Second}, {0, 66 * time.Second}} {
		t.Run(fmt.Sprint("keepalive", tc.keepAlive), func(t *testing.T) {
			n := newNet(t, broker.Config{MaxRetries: 100, RetryInterval: 50 * time.Second})
			w := willWatcher(t, n, "will/#")
			c := n.NewClient("sleeper", addr2)
			c.Connect(t, brokertest.ConnectOptions{KeepAlive: tc.keepAlive, Will: true, WillTopic: "will/sleeper", WillMsg: "zzz"})
			c.Subscribe(t, "s/t", 1)
			pub := n.NewClient("pub", addr1)
			pub.Connect(t, brokertest.ConnectOptions{})
			id := pub.Register(t, "s/t")
			start := n.Now()
			c.Send(sleepPkt(60))
			pub.Send(publishPkt(1, packet.TopicNormal, id, 1, "m"))
			c.Drain()
			c.Send(pingPkt("sleeper"))
			c.Expect(t, packet.PUBLISH)
			wantState(t, n, broker.StateAwake, 1)
			n.AdvanceTo(start.Add(tc.lostAt - time.Millisecond))
			if len(w.Deliveries) != 0 {
				t.Fatal("lost early")
			}
			n.Advance(time.Millisecond)
			if len(w.Deliveries) != 1 {
				t.Fatalf("not lost at %v: %v", tc.lostAt, w.DeliveredData())
			}
		})
	}
}
