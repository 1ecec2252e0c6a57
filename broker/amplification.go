package broker

import "time"

// Amplification. A UDP service answers whatever address a datagram claims to come
// from, so a spoofed CONNECT (taking over a session with queued messages), a spoofed
// PINGREQ with a ClientId (waking a sleeper and flushing its buffer) or a spoofed
// CONNECT + SUBSCRIBE "#" (pulling every retained message) would turn the broker into
// an amplifier aimed at a victim. Following QUIC (RFC 9000 8.1), until an address
// proves it receives what the broker sends, the broker sends it at most
// MaxAmplification times the octets it received from it.
//
// Proof is an acknowledgement — REGACK, PUBACK, PUBREC or PUBCOMP — carrying a message
// id the broker sent only to that address, drawn from a seeded generator so an
// off-path spoofer cannot guess it. Clients that only ever receive QoS 0 prove
// themselves by answering a REGISTER, which the broker sends as a challenge when the
// budget runs out. Direct replies (CONNACK, SUBACK, PINGRESP, ...) are never larger than
// what provoked them by more than a couple of octets, so they always go out.

// withinBudget reports whether n more octets may be sent to s now.
func (b *Broker) withinBudget(s *session, n int) bool {
	if s.validated || b.cfg.MaxAmplification < 0 {
		return true
	}
	return s.txBytes+uint64(n) <= uint64(b.cfg.MaxAmplification)*s.rxBytes
}

// ChallengeTopic is the topic the address challenge REGISTERs when the topic of the
// waiting delivery has a longer name: short, so the challenge always fits the budget
// whatever the length of the topics the client waits for, and under $SYS, so that no
// wildcard subscription ever receives anything on it.
const ChallengeTopic = "$SYS/broker/challenge"

// challengeName is the topic the challenge for a delivery of m REGISTERs: m's own if
// it is no longer than ChallengeTopic (the client will need that id anyway).
func challengeName(m *message) string {
	if len(m.topic) <= len(ChallengeTopic) {
		return m.topic
	}
	return ChallengeTopic
}

// challengeLen is the encoded size of the challenge REGISTER for m: the room kept in
// the budget, so that deliveries never spend the budget a client needs to prove itself.
func challengeLen(m *message) int { return 6 + len(challengeName(m)) }

// challenge asks an unproven client to answer a REGISTER with an unguessable message
// id, so that it proves its address and deliveries can continue. The spec lets a
// gateway REGISTER a topic at any time (6.10); the client's REGACK, whatever its
// return code, carries the proof.
func (b *Broker) challenge(s *session, m *message, now time.Time, out []Datagram) []Datagram {
	if s.reg != nil || s.validated {
		return out
	}
	name := challengeName(m)
	id := m.topicID
	if id == 0 || name != m.topic {
		var ok bool
		if id, ok = b.register(name); !ok {
			return out
		}
		if name == m.topic {
			m.topicID = id
		}
	}
	if !b.withinBudget(s, 6+len(name)) {
		return out
	}
	out = b.sendRegister(s, id, 0, now, m.mark, out)
	s.reg.challenge = true
	return out
}

// publishLen is the encoded size of m as a PUBLISH (an upper bound: a forwarder's
// encapsulation adds its own header, which the budget absorbs).
func publishLen(m *message) int {
	n := 7 + len(m.data)
	if n > 255 {
		n += 2
	}
	return n
}

func registerLen(b *Broker, id uint16) int {
	name, _ := b.topics.name(id)
	n := 6 + len(name)
	if n > 255 {
		n += 2
	}
	return n
}

// random returns the next value of a splitmix64 generator.
func (b *Broker) random() uint64 {
	b.rng += 0x9e3779b97f4a7c15
	z := b.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
