package broker

import (
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// Back-pressure (docs/reliability.md, "Back-pressure"). A PUBACK or PUBREC "accepted"
// promises delivery to every subscriber that matched: so when a connected subscriber's
// outbox is full, a client's QoS 1/2 publication is not dropped but held — not
// delivered to anyone, not acknowledged — until every matching outbox has room. Then it
// is delivered and acknowledged. The publisher, which waits for that acknowledgement,
// is paced to its slowest subscriber; its resends of a held publication (same message
// id) are recognised and ignored. Past MaxHeldPerClient held publications, or
// MaxHoldTime held, the answer is PUBACK 0x01 (congestion) and the publication is
// delivered to no one.

// heldPublish is a client's QoS 1/2 publication waiting for room.
type heldPublish struct {
	pub        *session
	m          message // owns its payload; retain as published
	msgID      uint16
	pubTopicID uint16 // the TopicId the publisher used, for its PUBACK
	sum        uint64 // publishSum, remembered for QoS 2 once accepted
	mark       uint64
	since      time.Time
}

// offer delivers a client's QoS 1/2 publication m if every matching outbox that would
// push back has room, and reports whether it did (the caller then acknowledges it).
// Otherwise the publication is held, or refused with PUBACK congestion past the bound,
// and the caller sends nothing more.
func (b *Broker) offer(r *request, s *session, m *message, out []Datagram) ([]Datagram, bool) {
	p := r.p
	if b.cfg.QueueFullPolicy == PolicyDrop {
		return b.publish(r.now, m, OriginClient, out), true
	}
	if b.findHeld(s, p.MsgID) >= 0 {
		b.c.drops[DropHeldResend].Add(1) // a resend of what is held: it waits as it is
		return out, false
	}
	if s.held == 0 {
		// Nothing of this publisher's waits ahead of it (its order is kept).
		if !b.resolve(m) {
			b.c.publishesIn.Add(1)
			return out, true // the topic table is full: delivered to no one, as unheld
		}
		b.matches = b.subs.MatchAppend(b.matches[:0], m.topic)
		if b.roomForAll(m) {
			b.c.publishesIn.Add(1)
			return b.fanout(r.now, m, OriginClient, true, true, out), true
		}
	}
	if s.held >= b.cfg.MaxHeldPerClient {
		b.c.drops[DropCongestion].Add(1)
		b.limitHitDetail(LimitHold, s.clientID, "too many held")
		return b.puback(out, s, p, packet.Congestion, r.mark), false
	}
	h := heldPublish{pub: s, m: *m, msgID: p.MsgID, pubTopicID: p.TopicID, mark: r.mark, since: r.now}
	h.m.data = append([]byte(nil), m.data...)
	h.m.own = true
	if m.qos == packet.QoS2 {
		h.sum = publishSum(p)
	}
	b.held = append(b.held, h)
	s.held++
	b.c.gauges.held.Add(1)
	return out, false
}

// roomForAll applies the back-pressure rule to every subscriber in b.matches for m,
// marking each outbox that would have to push back (so that its room wakes the held
// publications), and reports whether none would.
func (b *Broker) roomForAll(m *message) bool {
	ok := true
	for _, e := range b.matches {
		s := b.sessions[e.Sub]
		q := deliveryQoS(m.qos, e.QoS)
		// No need to ask whether it could be sent at once (fanout's shortcut): that
		// needs an empty queue, and an empty queue never blocks.
		if q == packet.QoS0 || s.out.queued() < b.cfg.MaxQueuedPerClient {
			continue
		}
		if v, _ := s.out.admit(s.audience(), b.admitting(q, true)); v == verdictBlock {
			s.out.blocked = true
			ok = false
		}
	}
	return ok
}

// findHeld returns the index in b.held of s's held publication msgID, or -1.
func (b *Broker) findHeld(s *session, msgID uint16) int {
	if s.held == 0 {
		return -1
	}
	for i := range b.held {
		if h := &b.held[i]; h.pub == s && h.msgID == msgID {
			return i
		}
	}
	return -1
}

// heldQoS2 counts s's held QoS 2 publications.
func (b *Broker) heldQoS2(s *session) int {
	if s.held == 0 {
		return 0
	}
	n := 0
	for i := range b.held {
		if h := &b.held[i]; h.pub == s && h.m.qos == packet.QoS2 {
			n++
		}
	}
	return n
}

// releaseHeld delivers and acknowledges, in arrival order, the held publications for
// which every matching outbox now has room; a publisher's later publications wait
// behind its earlier ones.
func (b *Broker) releaseHeld(now time.Time, out []Datagram) []Datagram {
	for b.heldWake && len(b.held) > 0 {
		b.heldWake = false
		b.heldPass++
		kept := 0
		for i := 0; i < len(b.held); i++ {
			h := &b.held[i]
			if h.pub.heldPass != b.heldPass {
				if ok, resolved := b.admitHeld(h); ok {
					out = b.acceptHeld(now, h, resolved, out)
					continue
				}
			}
			h.pub.heldPass = b.heldPass
			b.held[kept] = *h
			kept++
		}
		clear(b.held[kept:])
		b.held = b.held[:kept]
	}
	b.heldWake = false
	return out
}

// admitHeld resolves and matches a held publication and applies the rule again. A
// topic that cannot be resolved (the topic table is full) is accepted and delivered to
// no one, as it would have been unheld.
func (b *Broker) admitHeld(h *heldPublish) (ok, resolved bool) {
	if !b.resolve(&h.m) {
		return true, false
	}
	b.matches = b.subs.MatchAppend(b.matches[:0], h.m.topic)
	return b.roomForAll(&h.m), true
}

// acceptHeld delivers a held publication (admitHeld matched it) and acknowledges it.
func (b *Broker) acceptHeld(now time.Time, h *heldPublish, resolved bool, out []Datagram) []Datagram {
	s := h.pub
	s.held--
	b.c.gauges.held.Add(-1)
	b.c.publishesIn.Add(1)
	if resolved {
		out = b.fanout(now, &h.m, OriginClient, true, false, out)
	}
	if h.m.qos == packet.QoS2 {
		b.receivedQoS2(s, h.msgID, h.sum)
		q := b.reply(packet.PUBREC)
		q.MsgID = h.msgID
		return b.emitTo(out, s, h.mark)
	}
	q := b.reply(packet.PUBACK)
	q.TopicID, q.MsgID, q.ReturnCode = h.pubTopicID, h.msgID, packet.Accepted
	return b.emitTo(out, s, h.mark)
}

// expireHeld refuses, with PUBACK congestion, the publications held MaxHoldTime.
func (b *Broker) expireHeld(now time.Time, out []Datagram) []Datagram {
	n := 0
	for n < len(b.held) && !now.Before(b.held[n].since.Add(b.cfg.MaxHoldTime)) {
		h := &b.held[n]
		s := h.pub
		s.held--
		b.c.gauges.held.Add(-1)
		b.c.drops[DropCongestion].Add(1)
		b.limitHitDetail(LimitHold, s.clientID, "held too long")
		q := b.reply(packet.PUBACK)
		q.TopicID, q.MsgID, q.ReturnCode = h.pubTopicID, h.msgID, packet.Congestion
		out = b.emitTo(out, s, h.mark)
		n++
	}
	if n > 0 {
		k := copy(b.held, b.held[n:])
		clear(b.held[k:])
		b.held = b.held[:k]
	}
	return out
}

// heldDeadline is when the oldest held publication expires (zero if none is held), or
// at once if an outbox freed room outside Receive and Tick (Inject).
func (b *Broker) heldDeadline() time.Time {
	switch {
	case len(b.held) == 0:
		return time.Time{}
	case b.heldWake:
		return time.Unix(0, 1)
	}
	return b.held[0].since.Add(b.cfg.MaxHoldTime)
}

// dropHeld forgets what s has held: its client left (disconnect, sleep, loss,
// reconnect), and none of it was acknowledged, so nothing promised is lost.
func (b *Broker) dropHeld(s *session) {
	if s.held == 0 {
		return
	}
	kept := b.held[:0]
	for _, h := range b.held {
		if h.pub == s {
			b.c.drops[DropHeldAbandoned].Add(1)
			b.c.gauges.held.Add(-1)
			continue
		}
		kept = append(kept, h)
	}
	clear(b.held[len(kept):])
	b.held = kept
	s.held = 0
}
