package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

// flowMessage is one message of a publish flow: its type, which way it travels, and
// whether it belongs to the publisher's leg or the subscriber's.
type flowMessage struct {
	typ packet.Type
	dir brokertest.Direction
	sub bool
}

func (m flowMessage) String() string {
	leg := "pub"
	if m.sub {
		leg = "sub"
	}
	arrow := "→broker"
	if m.dir == brokertest.ToClient {
		arrow = "broker→"
	}
	if m.dir == brokertest.ToClient {
		return arrow + leg + "_" + m.typ.String()
	}
	return leg + arrow + "_" + m.typ.String()
}

var flows = map[packet.QoS][]flowMessage{
	0: {
		{packet.PUBLISH, brokertest.ToBroker, false},
		{packet.PUBLISH, brokertest.ToClient, true},
	},
	1: {
		{packet.PUBLISH, brokertest.ToBroker, false},
		{packet.PUBACK, brokertest.ToClient, false},
		{packet.PUBLISH, brokertest.ToClient, true},
		{packet.PUBACK, brokertest.ToBroker, true},
	},
	2: {
		{packet.PUBLISH, brokertest.ToBroker, false},
		{packet.PUBREC, brokertest.ToClient, false},
		{packet.PUBREL, brokertest.ToBroker, false},
		{packet.PUBCOMP, brokertest.ToClient, false},
		{packet.PUBLISH, brokertest.ToClient, true},
		{packet.PUBREC, brokertest.ToBroker, true},
		{packet.PUBREL, brokertest.ToClient, true},
		{packet.PUBCOMP, brokertest.ToBroker, true},
	},
}

// TestFlowUnderLossAndDuplication loses (once, twice) or duplicates each message of each
// QoS flow, in each direction, between a conforming publisher and subscriber (Auto
// clients: T_RETRY 10 s, DUP on resend), and counts what reaches the subscriber's
// application: QoS 2 exactly once, QoS 1 at least once, QoS 0 at most once per copy sent.
func TestFlowUnderLossAndDuplication(t *testing.T) {
	faults := []struct {
		name    string
		verdict brokertest.Verdict
		count   int
	}{
		{"lost", brokertest.Drop, 1},
		{"lost twice", brokertest.Drop, 2},
		{"duplicated", brokertest.Duplicate, 1},
	}
	for q := packet.QoS(0); q <= 2; q++ {
		for _, m := range flows[q] {
			for _, f := range faults {
				t.Run(fmt.Sprintf("qos%d/%v/%s", q, m, f.name), func(t *testing.T) {
					n := newNet(t, broker.Config{})
					sub := n.NewClient("sub", addr2)
					sub.Auto = true
					sub.Connect(t, brokertest.ConnectOptions{})
					sub.Subscribe(t, "a/b", q)
					pub := n.NewClient("pub", addr1)
					pub.Auto = true
					pub.Connect(t, brokertest.ConnectOptions{})
					id := pub.Register(t, "a/b")
					pub.Drain()
					sub.Drain()

					who := pub
					if m.sub {
						who = sub
					}
					fault := n.AddFault(brokertest.Fault{Dir: m.dir, Client: who, Type: m.typ, Verdict: f.verdict, Count: f.count})
					pub.Publish(q, packet.TopicNormal, id, "m", false)
					n.Advance(3 * time.Minute)

					if fault.Fired != f.count {
						if q == 0 && f.count == 2 {
							return // QoS 0 is sent once: nothing to lose twice
						}
						t.Fatalf("fault hit %d times, want %d: the flow never sent that message", fault.Fired, f.count)
					}
					got := countData(sub, "m")
					switch {
					case q == 2 && got != 1:
						t.Fatalf("QoS 2 delivered %d times, want exactly once", got)
					case q == 1 && got < 1:
						t.Fatalf("QoS 1 delivered %d times, want at least once", got)
					case q == 0:
						want := 1
						if f.verdict == brokertest.Drop {
							want = 0
						} else if f.verdict == brokertest.Duplicate {
							want = 2 // QoS 0 has no msg id: the network's copy is a second delivery
						}
						if got != want {
							t.Fatalf("QoS 0 delivered %d times, want %d", got, want)
						}
					}
					if q > 0 {
						if pub.Outstanding() != 0 || pub.GaveUp != 0 || len(pub.Acks) != 1 {
							t.Fatalf("publisher: outstanding %d, gave up %d, acks %d", pub.Outstanding(), pub.GaveUp, len(pub.Acks))
						}
					}
					if q > 0 && m.sub && m.typ == packet.PUBLISH && f.verdict == brokertest.Drop {
						// The broker's resend carried DUP.
						dups := 0
						for _, r := range sub.Inbox() {
							if r.Packet.Type == packet.PUBLISH {
								if !r.Packet.Flags.DUP() {
									t.Errorf("resend without DUP: %s", brokertest.Describe(&r.Packet))
								}
								dups++
							}
						}
						if dups != 1 {
							t.Errorf("subscriber saw %d resends after losing %d, want 1", dups, f.count)
						}
					}
					n.CheckQuiescent(t)
					if _, total := clients(n.Stats()); total != 2 {
						t.Errorf("sessions = %d: someone was lost", total)
					}
				})
			}
		}
	}
}

// TestRandomLossDuplicationReordering runs many publications over a network that loses,
// duplicates and reorders datagrams at random (seeded), with a subscriber at each QoS.
func TestRandomLossDuplicationReordering(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			// The clients announce no keep-alive and the test idles 2 h: grant that
			// much (max_keepalive would otherwise end them after 1 h of silence).
			n := newNet(t, broker.Config{MaxRetries: 20, MaxKeepAlive: 18 * time.Hour})
			n.ClientMaxRetries = 20
			subs := make([]*brokertest.Client, 3)
			for q := range subs {
				subs[q] = n.NewClient(fmt.Sprint("sub", q), fmt.Sprintf("10.0.2.%d:1000", q+1))
				subs[q].Auto = true
				subs[q].Connect(t, brokertest.ConnectOptions{})
				subs[q].Subscribe(t, "a/b", packet.QoS(q))
			}
			pub := n.NewClient("pub", addr1)
			pub.Auto = true
			pub.Connect(t, brokertest.ConnectOptions{})
			id := pub.Register(t, "a/b")

			n.Seed(seed)
			n.Impair = brokertest.Impairment{Loss: 0.15, Duplicate: 0.1, Reorder: 0.1}
			const each = 40
			for i := range each {
				pub.Publish(2, packet.TopicNormal, id, fmt.Sprint("two-", i), false)
				pub.Publish(1, packet.TopicNormal, id, fmt.Sprint("one-", i), false)
				n.Advance(time.Second)
			}
			n.Advance(2 * time.Hour)

			if pub.Outstanding() != 0 || pub.GaveUp != 0 || len(pub.Acks) != 2*each {
				t.Fatalf("publisher: outstanding %d, gave up %d, acks %d of %d", pub.Outstanding(), pub.GaveUp, len(pub.Acks), 2*each)
			}
			for i := range each {
				two, one := fmt.Sprint("two-", i), fmt.Sprint("one-", i)
				for q, s := range subs {
					if got := countData(s, two); q == 2 && got != 1 {
						t.Errorf("%s: QoS 2 message %q delivered %d times, want exactly once", s.Name, two, got)
					}
					if got := countData(s, one); q >= 1 && got < 1 {
						t.Errorf("%s: QoS 1 message %q delivered %d times, want at least once", s.Name, one, got)
					}
				}
			}
			// The broker's part of exactly-once: one publication reaches the QoS 2
			// subscriber under one msg id, however often it is resent.
			ids := map[string]map[uint16]bool{}
			for _, r := range subs[2].Inbox() {
				if r.Packet.Type == packet.PUBLISH && r.Packet.Flags.QoS() == 2 {
					d := string(r.Packet.Data)
					if ids[d] == nil {
						ids[d] = map[uint16]bool{}
					}
					ids[d][r.Packet.MsgID] = true
				}
			}
			for d, set := range ids {
				if len(set) != 1 {
					t.Errorf("%q sent under %d msg ids", d, len(set))
				}
			}
			n.CheckQuiescent(t)
			if _, total := clients(n.Stats()); total != 4 {
				t.Errorf("sessions = %d, want 4", total)
			}
			st := n.Stats()
			t.Logf("retransmissions %d, drops %d, duplicate QoS 2 copies recognised %d",
				st.Retransmissions, st.TotalDrops(), st.Drops[broker.DropDuplicate])
		})
	}
}
