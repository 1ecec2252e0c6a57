package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

// TestGaugesReturnToZero leaves every kind of state behind — subscriptions, inflight and
// queued deliveries, a pending REGISTER, sleep-buffered messages, QoS 2 receipts, an
// unfinished will exchange, persistent sessions lost with deliveries owed — then makes
// every client leave, and checks that nothing leaks.
func TestGaugesReturnToZero(t *testing.T) {
	n := newNet(t, broker.Config{Predefined: predefined, MaxRetries: 2})
	pub := n.NewClient("pub", addr1)
	pub.Connect(t, brokertest.ConnectOptions{Persistent: true})
	ab := pub.Register(t, "a/b")

	var subs []*brokertest.Client
	for i, f := range []string{"a/b", "a/+", "#", "pre/seven"} {
		c := n.NewClient(fmt.Sprint("sub", i), fmt.Sprintf("10.0.3.%d:1", i+1))
		c.Connect(t, brokertest.ConnectOptions{Persistent: i%2 == 0, KeepAlive: 120, Will: true, WillTopic: "will/x", WillMsg: "w"})
		c.Subscribe(t, f, packet.QoS(1+i%2))
		subs = append(subs, c)
	}
	sleepy := n.NewClient("sleepy", addr3)
	sleepy.Connect(t, brokertest.ConnectOptions{Persistent: true})
	sleepy.Subscribe(t, "a/#", 1)
	sleepy.Send(sleepPkt(300))
	half := n.NewClient("half", addr4) // never finishes its will exchange
	half.Send(connectPkt("half", packet.FlagCleanSession|packet.FlagWill, 0))

	for i := range 5 {
		pub.Send(publishPkt(packet.QoS(i%3), packet.TopicNormal, ab, uint16(i+1), fmt.Sprint("m", i)))
		pub.Send(publishPkt(1, packet.TopicPredefined, 7, uint16(i+100), "p"))
	}
	pub.Send(publishPkt(2, packet.TopicNormal, ab, 200, "unreleased")) // no PUBREL
	rp := publishPkt(1, packet.TopicNormal, ab, 201, "retained")
	rp.Flags |= packet.FlagRetain
	pub.Send(rp)

	s := n.Stats()
	t.Logf("mid-flight: clients %v subs %d inflight %d queued %d sleep-buffered %d retained %d",
		s.ClientsByState, s.Subscriptions, s.Inflight, s.Queued, s.SleepBuffered, s.Retained)
	if s.Inflight == 0 || s.Queued == 0 || s.SleepBuffered == 0 {
		t.Fatal("the scenario did not build up state")
	}

	// Some go silent (lost: their retries run out), the rest leave.
	n.Advance(time.Minute)
	for _, c := range append([]*brokertest.Client{pub, sleepy}, subs...) {
		// Reconnect clean (dropping any persistent state) and disconnect.
		c.Send(connectPkt(c.Name, packet.FlagCleanSession, 0))
		c.Send(disconnectPkt())
		c.Drain()
	}
	n.Advance(time.Hour) // the unfinished will exchange is abandoned
	n.CheckEmpty(t)
	if s := n.Stats(); s.Retained != 1 {
		t.Errorf("Retained = %d: retained messages outlive their publishers", s.Retained)
	}
}
