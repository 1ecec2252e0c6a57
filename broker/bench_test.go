package broker_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// The hot path — decode a PUBLISH, match, encode, hand out datagrams — measured in steady
// state through Receive with a reused out slice, as the driver calls it. The target is 0
// allocs/op.
//
//	go test -run='^$' -bench=BenchmarkPublish -benchmem ./broker/

type benchRig struct {
	b     *broker.Broker
	now   time.Time
	out   []broker.Datagram
	pub   netip.AddrPort
	subs  []netip.AddrPort
	topic uint16
	acks  [][]byte // one reusable acknowledgement buffer per subscriber
}

// send delivers p from from and returns what the broker sent, decoded.
func (r *benchRig) send(tb testing.TB, from netip.AddrPort, p packet.Packet) []packet.Packet {
	r.out = r.b.Receive(r.now, broker.Datagram{Addr: from, B: packet.Append(nil, &p)}, r.out[:0])
	var got []packet.Packet
	for _, d := range r.out {
		var q packet.Packet
		if err := packet.Decode(append([]byte(nil), d.B...), &q); err != nil {
			tb.Fatal(err)
		}
		got = append(got, q)
	}
	return got
}

// newBenchRig connects a publisher with "bench/topic" registered and n clean-session
// subscribers to it at QoS granted, each of which has proven its address (a QoS 1
// exchange), so the amplification bound never holds a delivery back.
func newBenchRig(tb testing.TB, n int, granted packet.QoS, persistent bool) *benchRig {
	b, err := broker.New(broker.Config{AdvertiseInterval: -1, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	r := &benchRig{b: b, now: time.Unix(1_700_000_000, 0), pub: netip.MustParseAddrPort("10.0.0.1:1883"), out: make([]broker.Datagram, 0, 64)}
	r.send(tb, r.pub, connectPkt("pub", packet.FlagCleanSession, 0))
	r.topic = r.send(tb, r.pub, packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("bench/topic")})[0].TopicID
	for i := range n {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1883)
		r.subs = append(r.subs, a)
		var f packet.Flags
		if !persistent {
			f = packet.FlagCleanSession
		}
		r.send(tb, a, connectPkt(fmt.Sprint("sub", i), f, 0))
		r.send(tb, a, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(1), MsgID: 1, TopicName: []byte("bench/topic")})
		r.acks = append(r.acks, make([]byte, 0, 8))
	}
	// Warm-up: a QoS 1 publication each subscriber acknowledges (proving its address),
	// then the granted QoS the benchmark runs at.
	out := r.send(tb, r.pub, publishPkt(1, packet.TopicNormal, r.topic, 1, "warm"))
	dests := append([]broker.Datagram(nil), r.out...)
	for i, p := range out {
		if p.Type == packet.PUBLISH {
			r.send(tb, dests[i].Addr, pubackPkt(p.TopicID, p.MsgID, 0))
		}
	}
	for _, a := range r.subs {
		r.send(tb, a, packet.Packet{Type: packet.SUBSCRIBE, Flags: qos(granted), MsgID: 2, TopicName: []byte("bench/topic")})
	}
	return r
}

// acknowledge answers the deliveries in out as the subscribers would: PUBACK for QoS 1,
// PUBREC then PUBCOMP for QoS 2. It checks the broker has nothing more to send.
func (r *benchRig) acknowledge(b *testing.B, out []broker.Datagram, want int) {
	// Copy what the answers need first: the next Receive reuses the buffers out points into.
	var ids [64]uint16
	var qs [64]byte
	k := 0
	for _, d := range out {
		if d.Addr == r.pub {
			continue
		}
		// A PUBLISH: length, type, flags, topic id (2), msg id (2).
		qs[k], ids[k] = d.B[2]>>5&3, binary.BigEndian.Uint16(d.B[5:7])
		k++
	}
	if k != want {
		b.Fatalf("%d deliveries, want %d", k, want)
	}
	for i := range k {
		a, sub := r.acks[i], r.subs[i]
		switch qs[i] {
		case 1:
			a = append(a[:0], 7, byte(packet.PUBACK), byte(r.topic>>8), byte(r.topic), byte(ids[i]>>8), byte(ids[i]), 0)
			r.out = r.b.Receive(r.now, broker.Datagram{Addr: sub, B: a}, r.out[:0])
		case 2:
			a = append(a[:0], 4, byte(packet.PUBREC), byte(ids[i]>>8), byte(ids[i]))
			r.out = r.b.Receive(r.now, broker.Datagram{Addr: sub, B: a}, r.out[:0])
			if len(r.out) != 1 {
				b.Fatalf("PUBREC answered with %d datagrams", len(r.out))
			}
			a = append(a[:0], 4, byte(packet.PUBCOMP), byte(ids[i]>>8), byte(ids[i]))
			r.out = r.b.Receive(r.now, broker.Datagram{Addr: sub, B: a}, r.out[:0])
		}
		if len(r.out) != 0 {
			b.Fatalf("acknowledgement answered with %d datagrams", len(r.out))
		}
		r.acks[i] = a
	}
}

func benchPublish(b *testing.B, q packet.QoS, fanout int, persistent bool) {
	r := newBenchRig(b, fanout, q, persistent)
	in := packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Flags: qos(q), TopicID: r.topic, MsgID: 7, Data: make([]byte, 32)})
	rel := packet.Append(nil, &packet.Packet{Type: packet.PUBREL, MsgID: 7})
	wantOut := fanout
	if q > 0 {
		wantOut++ // PUBACK or PUBREC to the publisher
	}
	b.ReportAllocs()
	b.ResetTimer()
	var msgID uint16 = 7
	for b.Loop() {
		// A fresh msg id per publication, as a client numbers them (PUBLISH: length,
		// type, flags, topic id, msg id).
		msgID++
		if msgID == 0 {
			msgID = 1
		}
		binary.BigEndian.PutUint16(in[5:], msgID)
		binary.BigEndian.PutUint16(rel[2:], msgID)
		out := r.b.Receive(r.now, broker.Datagram{Addr: r.pub, B: in, Mark: 1}, r.out[:0])
		if len(out) != wantOut {
			b.Fatalf("%d datagrams out, want %d", len(out), wantOut)
		}
		r.out = out
		if q == 2 {
			// The publisher's PUBREL completes its side.
			r.acknowledge(b, out, fanout)
			r.out = r.b.Receive(r.now, broker.Datagram{Addr: r.pub, B: rel}, r.out[:0])
			continue
		}
		if q > 0 {
			r.acknowledge(b, out, fanout)
		}
	}
	b.StopTimer()
	if s := r.b.Stats(); s.Inflight != 0 || s.Queued != 0 {
		b.Fatalf("not steady: inflight %d queued %d", s.Inflight, s.Queued)
	}
}

func BenchmarkPublishQoS0Fanout1(b *testing.B)  { benchPublish(b, 0, 1, false) }
func BenchmarkPublishQoS1Fanout1(b *testing.B)  { benchPublish(b, 1, 1, false) }
func BenchmarkPublishQoS2Fanout1(b *testing.B)  { benchPublish(b, 2, 1, false) }
func BenchmarkPublishQoS0Fanout10(b *testing.B) { benchPublish(b, 0, 10, false) }
func BenchmarkPublishQoS1Fanout10(b *testing.B) { benchPublish(b, 1, 10, false) }

// A persistent session must be able to resend an unacknowledged delivery after the
// client returns, so the broker keeps its own copy of each QoS 1/2 delivery (message and
// payload): 2 allocations per delivery, by design.
func BenchmarkPublishQoS1Fanout1Persistent(b *testing.B) { benchPublish(b, 1, 1, true) }
