package broker

import (
	"slices"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// handleSubscribe: SUBSCRIBE by topic name (wildcards allowed), pre-defined id or short
// name (6.9). SUBACK carries the granted QoS and, for a plain topic name, its id
// (0x0000 for wildcard filters); retained messages follow, REGISTERed first when the
// client has no id for them.
func (b *Broker) handleSubscribe(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	p := r.p
	granted := p.Flags.QoS()
	if granted < packet.QoS0 {
		granted = packet.QoS0
	}
	var filter string
	var id uint16
	rc := packet.Accepted
	switch p.Flags.TopicIDType() {
	case packet.TopicNormal:
		filter = string(p.TopicName)
		switch {
		case topic.ValidateFilter(filter) != nil:
			rc = packet.InvalidTopicID
		case !b.topicFits(filter):
			// A property of the request, not of the broker's load: 0x03, since a
			// client told "congestion" would retry the same filter for ever.
			b.limitHit(LimitTopicLength, s.clientID)
			rc = packet.NotSupported
		}
	case packet.TopicPredefined:
		name, ok := b.cfg.Predefined[p.TopicID]
		if !ok {
			rc = packet.InvalidTopicID
		}
		filter, id = name, p.TopicID
	case packet.TopicShort:
		filter, id = b.topics.shortName(p.TopicID), p.TopicID
		if !topic.IsShortName(filter) || topic.ValidateFilter(filter) != nil {
			// A short topic is a name: no wildcard. And the index holds no filter with
			// U+0000 or invalid UTF-8: accepted, it would never match (a '#' still
			// gets what is published on it).
			rc = packet.InvalidTopicID
		}
	}
	if rc == packet.Accepted && b.cfg.Access != nil && !b.cfg.Access.allowed(s.clientID, ActionSubscribe, filter) {
		b.c.drops[DropDenied].Add(1)
		b.denied(s, "subscribe "+filter)
		rc = packet.NotSupported
	}
	if _, exists := s.filters[filter]; rc == packet.Accepted && !exists {
		switch {
		case len(s.filters) >= b.cfg.MaxSubsPerClient:
			b.limitHit(LimitSubsPerClient, s.clientID)
			rc = packet.Congestion
		case !b.recordRoom(s, filterEntryLen+len(filter)+knownEntryLen):
			// The session record would outgrow what the journal can read back.
			b.limitHit(LimitSessionBytes, s.clientID)
			rc = packet.Congestion
		}
	}
	if rc == packet.Accepted && p.Flags.TopicIDType() == packet.TopicNormal && !topic.IsWildcard(filter) {
		if pid, ok := b.predefByName[filter]; ok {
			id = pid // delivered by its pre-defined id; tell the client so
		} else if topic.IsShortName(filter) {
			id = topic.ShortID(filter)
		} else if len(s.known) >= b.cfg.MaxTopicsPerClient && !b.knows(s, filter) {
			b.limitHit(LimitTopicsPerClient, s.clientID)
			rc = packet.Congestion
		} else {
			var ok bool
			if id, ok = b.register(filter); !ok {
				b.limitHit(LimitTopics, s.clientID)
				rc = packet.Congestion
			}
		}
	}
	if rc != packet.Accepted {
		id, granted = 0, 0
	}
	q := b.reply(packet.SUBACK)
	q.Flags = packet.Flags(0).WithQoS(granted)
	q.TopicID, q.MsgID, q.ReturnCode = id, p.MsgID, rc
	out = b.emitTo(out, s, r.mark)
	if rc != packet.Accepted {
		return out
	}
	if p.Flags.TopicIDType() == packet.TopicNormal && !topic.IsWildcard(filter) && id != 0 {
		if _, predefined := b.predefByName[filter]; !predefined && !topic.IsShortName(filter) {
			b.markKnown(s, id)
		}
	}
	b.addFilter(s, filter, uint8(granted))
	b.dirty(s)
	return b.sendRetained(s, filter, granted, r.now, out)
}

// sendRetained owes s the retained messages matching filter (6.9, MQTT 3.3.1.3): they
// join its outbox's backlog, which feeds the queue as room frees (pump), so a
// subscription to many retained topics is paced by the client, not cut at the queue
// bound. Each is sent with the value its topic holds when it enters the queue.
func (b *Broker) sendRetained(s *session, filter string, granted packet.QoS, now time.Time, out []Datagram) []Datagram {
	if len(b.retained) == 0 {
		return out
	}
	if !topic.IsWildcard(filter) {
		if _, ok := b.retained[filter]; !ok {
			return out
		}
		s.out.addBacklog([]string{filter}, granted)
		return b.pump(s, now, out)
	}
	// The index visits only the branches the filter reaches, so the cost does not grow
	// with the retained topics it does not match (issue 12).
	names := b.retainedIdx.MatchAppend(b.retainedBuf[:0], filter)
	// In name order, not map or trie order: the engine stays deterministic for a given
	// input (fuzz reproduction, transcripts, seeded simulations).
	if len(names) > 0 {
		slices.Sort(names)
		s.out.addBacklog(names, granted)
		out = b.pump(s, now, out)
	}
	clear(names)
	b.retainedBuf = names[:0]
	return out
}

// feedBacklog moves owed retained messages into s's queue while it has room, and
// reports whether it queued any.
func (b *Broker) feedBacklog(s *session) bool {
	fed := false
	for s.out.queued() < b.cfg.MaxQueuedPerClient {
		ref, ok := s.out.nextBacklog()
		if !ok {
			break
		}
		rm, ok := b.retained[ref.name]
		if !ok {
			continue // cleared since the subscription
		}
		q := rm.qos
		if ref.granted < q {
			q = ref.granted
		}
		id, _ := b.topics.lookup(ref.name)
		m := &message{topic: ref.name, topicID: id, data: rm.data, qos: q, retain: true, own: true}
		if !b.resolve(m) {
			continue
		}
		b.queueDelivery(s, m, q)
		fed = true
	}
	return fed
}

// storeRetained keeps the last retained message per topic; an empty payload clears it.
func (b *Broker) storeRetained(m *message) {
	if len(m.data) == 0 {
		if _, ok := b.retained[m.topic]; ok {
			delete(b.retained, m.topic)
			b.retainedIdx.Remove(m.topic)
			b.c.gauges.retained.Add(-1)
			b.journalRetain(m.topic, nil)
			b.retainRef(m.topic, -1)
		}
		return
	}
	rm, ok := b.retained[m.topic]
	if !ok {
		if len(b.retained) >= b.cfg.MaxRetained {
			b.c.drops[DropRetainedFull].Add(1)
			b.limitHit(LimitRetained, "")
			return
		}
		rm = &retainedMsg{}
		b.retained[m.topic] = rm
		b.retainedIdx.Add(m.topic)
		b.c.gauges.retained.Add(1)
		b.retainRef(m.topic, 1)
	}
	// A fresh slice: queued deliveries of the previous value may still share the old one.
	rm.data = append([]byte(nil), m.data...)
	rm.qos = m.qos
	b.journalRetain(m.topic, rm)
}

// handleUnsubscribe: UNSUBSCRIBE (6.9); UNSUBACK is sent whether or not the
// subscription existed.
func (b *Broker) handleUnsubscribe(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	p := r.p
	var filter string
	switch p.Flags.TopicIDType() {
	case packet.TopicNormal:
		filter = string(p.TopicName)
	case packet.TopicPredefined:
		filter = b.cfg.Predefined[p.TopicID]
	case packet.TopicShort:
		filter = b.topics.shortName(p.TopicID)
	}
	if b.removeFilter(s, filter) {
		b.dirty(s)
		b.heldWake = true // publications held for this subscriber may no longer need it
	}
	b.reply(packet.UNSUBACK).MsgID = p.MsgID
	return b.emitTo(out, s, r.mark)
}
