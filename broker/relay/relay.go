// Package relay is the floor of every benchmark: a sans-IO engine that answers an
// MQTT-SN client's session set-up just enough for the same client code to run
// against it, forwards each PUBLISH datagram unchanged to every subscriber, and
// acknowledges it to the publisher. It keeps no state but the subscribers' addresses:
// what is left of a broker's latency once the broker does nothing.
//
// It has the broker's engine methods (Receive, Tick, Deadline), so the same driver
// loop, sockets and — on the image — the same gVisor stack and NIC run it in place of
// the broker: `musqratt relay` hosted, the image's relay mode on bare metal.
package relay

import (
	"net/netip"
	"slices"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// maxSubscribers bounds the subscriber list: a floor for benchmarks, not a broker.
const maxSubscribers = 4096

// Relay is the floor engine. The zero value is ready to use; it is not safe for
// concurrent use (one driver loop owns it).
type Relay struct {
	subs  []netip.AddrPort // in SUBSCRIBE order
	in    packet.Packet
	arena []byte
}

// Receive answers or forwards one datagram. Datagrams appended to out alias the
// relay's buffers (or in.B) until the next call.
func (r *Relay) Receive(_ time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	r.arena = r.arena[:0]
	p := &r.in
	p.Reset()
	if packet.Decode(in.B, p) != nil {
		return out
	}
	from := in.Addr
	switch p.Type {
	case packet.PUBLISH:
		for _, sub := range r.subs {
			if sub != from {
				out = append(out, broker.Datagram{Addr: sub, B: in.B, Mark: in.Mark})
			}
		}
		switch p.Flags.QoS() {
		case packet.QoS1:
			out = r.reply(out, in, &packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
		case packet.QoS2:
			out = r.reply(out, in, &packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
		}
	case packet.PUBREC: // from the subscriber, QoS 2
		out = r.reply(out, in, &packet.Packet{Type: packet.PUBREL, MsgID: p.MsgID})
	case packet.PUBREL: // from the publisher, QoS 2
		out = r.reply(out, in, &packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
	case packet.CONNECT:
		out = r.reply(out, in, &packet.Packet{Type: packet.CONNACK})
	case packet.SUBSCRIBE:
		if !slices.Contains(r.subs, from) && len(r.subs) < maxSubscribers {
			r.subs = append(r.subs, from)
		}
		out = r.reply(out, in, &packet.Packet{Type: packet.SUBACK,
			Flags: p.Flags & packet.Flags(0).WithQoS(packet.QoSMinus1), TopicID: 1, MsgID: p.MsgID})
	case packet.REGISTER:
		out = r.reply(out, in, &packet.Packet{Type: packet.REGACK, TopicID: 1, MsgID: p.MsgID})
	case packet.PINGREQ:
		out = r.reply(out, in, &packet.Packet{Type: packet.PINGRESP})
	case packet.DISCONNECT:
		r.subs = slices.DeleteFunc(r.subs, func(a netip.AddrPort) bool { return a == from })
		out = r.reply(out, in, &packet.Packet{Type: packet.DISCONNECT})
	}
	return out
}

// reply encodes q into the arena, addressed to the sender of in.
func (r *Relay) reply(out []broker.Datagram, in broker.Datagram, q *packet.Packet) []broker.Datagram {
	start := len(r.arena)
	r.arena = packet.Append(r.arena, q)
	return append(out, broker.Datagram{Addr: in.Addr, B: r.arena[start:len(r.arena):len(r.arena)], Mark: in.Mark})
}

// Tick does nothing: the relay has no timers.
func (r *Relay) Tick(_ time.Time, out []broker.Datagram) []broker.Datagram { return out }

// Deadline is never: the relay has no timers.
func (r *Relay) Deadline() time.Time { return time.Time{} }

// Subscribers is how many addresses the relay forwards to.
func (r *Relay) Subscribers() int { return len(r.subs) }
