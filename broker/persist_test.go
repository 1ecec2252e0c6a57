package broker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// persistHarness drives a journaling broker and keeps its log, like the hosted driver.
type persistHarness struct {
	t   *testing.T
	b   *Broker
	log []byte
	now time.Time
}

func newPersistHarness(t *testing.T, log []byte) *persistHarness {
	t.Helper()
	b, err := New(Config{Persist: true, AdvertiseInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := &persistHarness{t: t, b: b, now: time.Unix(5000, 0)}
	if rep := b.Restore(h.now, log); rep.Undecodable != 0 || rep.Dropped() != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	h.log = append([]byte(nil), log...)
	h.log = append(h.log, b.TakeJournal()...)
	return h
}

func (h *persistHarness) send(from netip.AddrPort, p packet.Packet) []packet.Packet {
	h.t.Helper()
	out := h.b.Receive(h.now, Datagram{Addr: from, B: packet.Append(nil, &p)}, nil)
	h.log = append(h.log, h.b.TakeJournal()...)
	var got []packet.Packet
	for _, d := range out {
		var q packet.Packet
		if err := packet.Decode(append([]byte(nil), d.B...), &q); err != nil {
			h.t.Fatalf("broker sent malformed %x: %v", d.B, err)
		}
		got = append(got, q)
	}
	return got
}

func TestPersistentSessionSurvivesRestart(t *testing.T) {
	subAddr := netip.MustParseAddrPort("10.0.0.1:1000")
	pubAddr := netip.MustParseAddrPort("10.0.0.2:1000")
	h := newPersistHarness(t, nil)
	h.send(subAddr, packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 60, ClientID: []byte("sub")})
	suback := h.send(subAddr, packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(2), MsgID: 1, TopicName: []byte("a/b")})
	if suback[0].ReturnCode != packet.Accepted {
		t.Fatalf("suback %+v", suback[0])
	}
	h.send(subAddr, packet.Packet{Type: packet.DISCONNECT})
	h.send(pubAddr, packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("pub")})
	for i, qos := range []packet.QoS{1, 2, 1} {
		got := h.send(pubAddr, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(qos), TopicID: suback[0].TopicID, MsgID: uint16(i + 1), Data: []byte{byte('0' + i)}})
		if len(got) != 1 || (got[0].Type != packet.PUBACK && got[0].Type != packet.PUBREC) {
			t.Fatalf("publish %d: %+v", i, got)
		}
	}
	retained := packet.Flags(0).WithQoS(1) | packet.FlagRetain
	h.send(pubAddr, packet.Packet{Type: packet.PUBLISH, Flags: retained, TopicID: suback[0].TopicID, MsgID: 9, Data: []byte("kept")})

	// "Restart": a new broker from the log alone.
	h2 := newPersistHarness(t, h.log)
	got := h2.send(subAddr, packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 60, ClientID: []byte("sub")})
	if got[0].Type != packet.CONNACK {
		t.Fatalf("want CONNACK first, got %+v", got)
	}
	var payloads []string
	for _, p := range got[1:] {
		if p.Type != packet.PUBLISH {
			t.Fatalf("unexpected %v", p.Type)
		}
		payloads = append(payloads, string(p.Data))
		for {
			ack := packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID}
			if p.Flags.QoS() == packet.QoS2 {
				ack = packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID}
			}
			next := h2.send(subAddr, ack)
			if len(next) > 0 && next[0].Type == packet.PUBREL {
				next = h2.send(subAddr, packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
			}
			if len(next) == 0 {
				break
			}
			p = next[0]
			payloads = append(payloads, string(p.Data))
		}
	}
	want := []string{"0", "1", "2", "kept"}
	if len(payloads) != len(want) {
		t.Fatalf("after restart got %q, want %q", payloads, want)
	}
	for i := range want {
		if payloads[i] != want[i] {
			t.Fatalf("after restart got %q, want %q", payloads, want)
		}
	}
	if n := h2.b.Stats().Retained; n != 1 {
		t.Fatalf("retained after restart = %d, want 1", n)
	}
}
