package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// TestDurabilityRegressions: the durable changes the engine once made without
// recording them, or recorded and then could not restore, each found by FuzzEngine's
// durability check (durable_fuzz_test.go). Each flow runs through the fuzz harness,
// which compares the live engine's durable state with the journal's (and a
// snapshot's) after every call; want are lines the live state must then hold, so the
// flow still reaches the state it is about.
func TestDurabilityRegressions(t *testing.T) {
	for _, tc := range []struct {
		name string
		flow func(h *engineHarness)
		want []string
	}{{
		// Restore held short topic names to ValidateName, which refuses U+0000 and
		// invalid UTF-8; a short name is any two octets but the wildcards (6.7).
		name: "short topic of any two octets",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", 0, 60))
			// The topic index holds no such filter: refused, not accepted and never matched.
			if got := h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1).WithTopicIDType(packet.TopicShort), MsgID: 1, TopicID: 0x00ff}); got[0].ReturnCode != packet.InvalidTopicID {
				h.t.Fatalf("SUBSCRIBE to short topic 0x00ff: %+v", got)
			}
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 2, TopicName: []byte("#")})
			h.send(0, 0, disconnectPkt())
			h.send(1, 0, connectPkt("p", packet.FlagCleanSession, 60))
			p := publishPkt(1, packet.TopicShort, 0x00ff, 1, "kept")
			p.Flags |= packet.FlagRetain
			h.send(1, 0, p)
		},
		want: []string{
			`retained "\x00\xff" qos 1 "kept"`,
			`session "s" owed 0: "\x00\xff" qos 1 retain false "kept" not sent`,
		},
	}, {
		// Restore kept max_queued_per_client owed deliveries, but a full queue has the
		// in-flight window's on top (requeued at its head when the client goes away):
		// one acknowledged delivery lost per full session.
		name: "full queue and the window",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", 0, 60))
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1).WithTopicIDType(packet.TopicShort), MsgID: 1, TopicID: 0x6162})
			h.send(1, 0, connectPkt("p", packet.FlagCleanSession, 60))
			for i := range 5 {
				h.send(1, 0, publishPkt(1, packet.TopicShort, 0x6162, uint16(1+i), fmt.Sprint(i)))
			}
			h.send(0, 0, disconnectPkt())
		},
		want: []string{`session "s" owed 4: "ab" qos 1 retain false "4" not sent`},
	}, {
		// A clean session reconnecting with CleanSession=0 keeps its queue (and it is
		// owed from then on), but its queued deliveries were never journaled.
		name: "clean session turned persistent",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", packet.FlagCleanSession, 60))
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("e/+")})
			h.send(1, 0, connectPkt("p", packet.FlagCleanSession, 60))
			id := h.send(1, 0, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("e/1")})[0].TopicID
			h.send(1, 0, publishPkt(1, packet.TopicNormal, id, 2, "owed")) // queued behind a REGISTER
			h.send(0, 0, connectPkt("s", 0, 60))
		},
		want: []string{`session "s" owed 0: "e/1" qos 1 retain false "owed" not sent`},
	}, {
		// A sleeping session's CONNECT whose will exchange is abandoned leaves it
		// disconnected, but its record still said asleep: restored, it slept on, and
		// its sleep expiring published the will of a client that had not been lost.
		name: "asleep, then a CONNECT abandoned",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", packet.FlagWill, 60))
			h.send(0, 0, packet.Packet{Type: packet.WILLTOPIC, WillTopic: []byte("w")})
			h.send(0, 0, packet.Packet{Type: packet.WILLMSG, WillMsg: []byte("gone")})
			h.send(0, 0, sleepPkt(100))
			h.send(0, 0, connectPkt("s", packet.FlagWill, 60))
			h.wait(130)
		},
		want: []string{`session "s" away`},
	}, {
		// Restore held registrations to max_topics_per_client, which bounds only the
		// ids a client asks for: a wildcard subscriber is REGISTERed every topic it
		// gets, and lost the ids past the limit (its client still used them).
		name: "registrations past max_topics_per_client",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", 0, 60))
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(0), MsgID: 1, TopicName: []byte("r/#")})
			for i := range 6 {
				c := 1 + 2*(i/3) // two publishers, each within MaxTopicsPerClient
				if i%3 == 0 {
					h.send(c, 0, connectPkt(fmt.Sprint("p", c), packet.FlagCleanSession, 60))
				}
				r := h.send(c, 0, packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprint("r/", i))})
				h.send(c, 0, publishPkt(0, packet.TopicNormal, r[0].TopicID, 0, "x"))
				h.ackAll(0, h.last[0])
			}
		},
		want: []string{`session "s" topic id 6 "r/5"`},
	}, {
		// A delivery sent at once at a subscription's lower QoS was kept (and
		// journaled, and requeued on resume) at the publication's QoS: resent as QoS 2
		// to a QoS 1 subscription, and restored so.
		name: "in flight at the granted QoS",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", 0, 60))
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1).WithTopicIDType(packet.TopicShort), MsgID: 1, TopicID: 0x6162})
			h.send(1, 0, connectPkt("p", packet.FlagCleanSession, 60))
			h.send(1, 0, publishPkt(2, packet.TopicShort, 0x6162, 1, "q"))
			h.send(0, 0, disconnectPkt())
		},
		want: []string{`session "s" owed 0: "ab" qos 1 retain false "q" id 23746 awaiting PUBACK`},
	}, {
		// A held QoS 2 publication passed the max_qos2_incoming check when it arrived,
		// and became a receipt when delivered: the receipts could exceed the limit,
		// and restore then dropped them (a duplicate delivery after a restart).
		name: "QoS 2 receipts of held publications",
		flow: func(h *engineHarness) {
			h.send(0, 0, connectPkt("s", packet.FlagCleanSession, 60))
			h.send(0, 0, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1).WithTopicIDType(packet.TopicShort), MsgID: 1, TopicID: 0x6162})
			h.send(1, 0, connectPkt("p", 0, 60))
			h.send(1, 0, publishPkt(2, packet.TopicShort, 0x6162, 1, "receipt"))
			first := slices.Clone(h.last[0])
			for i := range 4 {
				h.send(1, 0, publishPkt(1, packet.TopicShort, 0x6162, uint16(10+i), "fill"))
			}
			h.send(1, 0, publishPkt(2, packet.TopicShort, 0x6162, 20, "held"))
			if got := h.send(1, 0, publishPkt(2, packet.TopicShort, 0x6162, 21, "over")); len(got) != 1 || got[0].ReturnCode != packet.Congestion {
				h.t.Fatalf("a third QoS 2 receipt (one held) under max_qos2_incoming 2: %+v", got)
			}
			h.ackAll(0, first)
		},
		want: []string{`session "p" qos2 received id 1 sum c319f5c389dca5b2`, `session "p" qos2 received id 20 sum 6622e81cbda128b1`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newEngineHarness(t)
			tc.flow(h)
			live := broker.DurableState(h.b)
			for _, w := range tc.want {
				if !slices.Contains(live, w) {
					t.Errorf("live durable state lacks %s; it is:\n%s", w, strings.Join(live, "\n"))
				}
			}
		})
	}
}

// TestDurableStateDiff: the check's diff names what is missing and what is extra.
func TestDurableStateDiff(t *testing.T) {
	got := broker.DiffLines([]string{"a", "b", "c"}, []string{"a", "c", "d"})
	want := "  a\n- b\n  c\n+ d\n"
	if got != want {
		t.Fatalf("DiffLines:\n%s\nwant:\n%s", got, want)
	}
	if d := broker.DiffLines([]string{"x"}, []string{"x"}); d != "" {
		t.Fatalf("equal states differ: %q", d)
	}
}
