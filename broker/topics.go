package broker

import (
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// topicTable assigns normal topic ids. The ids are global rather than per client, so a
// delivery fanned out to many subscribers uses the same id for all of them; each
// session records which ids its client has been told (session.known).
type topicTable struct {
	byName map[string]uint16
	names  []string // indexed by id; names[0] is unused (0x0000 is reserved)
	short  map[uint16]string
}

func (t *topicTable) init() {
	t.byName = make(map[string]uint16)
	t.names = []string{""}
	t.short = make(map[uint16]string)
}

func (t *topicTable) lookup(name string) (uint16, bool) {
	id, ok := t.byName[name]
	return id, ok
}

func (t *topicTable) name(id uint16) (string, bool) {
	if int(id) < len(t.names) && id != 0 {
		return t.names[id], true
	}
	return "", false
}

// shortName interns the two-character name of a short topic id, so publishing on
// short topics does not allocate a string per message.
func (t *topicTable) shortName(id uint16) string {
	if n, ok := t.short[id]; ok {
		return n
	}
	n := topic.ShortName(id)
	if len(t.short) < 4096 {
		t.short[id] = n
	}
	return n
}

// message is one publication on its way to a subscriber. Queued messages own their
// data; one copy is shared by every queue a fan-out reaches.
type message struct {
	topic   string
	topicID uint16             // the global normal id, 0 if the topic has none yet
	idType  packet.TopicIDType // how subscribers are told the topic (see resolve)
	wireID  uint16             // the TopicId octets for idType
	data    []byte
	qos     packet.QoS
	retain  bool
	mark    uint64

	// Set when a delivery is requeued after it was sent: it keeps its msg id and
	// handshake position and is resent with DUP.
	dup      bool
	msgID    uint16
	awaiting packet.Type

	own           bool   // data is a private copy (not the received datagram's buffer)
	sleepBuffered bool   // counted in the sleep-buffer gauge
	reRegistered  bool   // already re-registered once after a PUBACK "invalid topic id"
	seq           uint64 // journal identity of a delivery owed to a persistent session
}

type retainedMsg struct {
	data []byte
	qos  packet.QoS
}

// register returns the id of name, assigning one if needed. ok is false when the table
// is full (MaxTopics).
func (b *Broker) register(name string) (id uint16, ok bool) {
	if id, ok := b.topics.byName[name]; ok {
		return id, true
	}
	if len(b.topics.names)-1 >= b.cfg.MaxTopics {
		return 0, false
	}
	id = uint16(len(b.topics.names))
	b.topics.names = append(b.topics.names, name)
	b.topics.byName[name] = id
	b.c.gauges.topics.Add(1)
	b.journalTopic(id, name)
	return id, true
}

// handleRegister: a client asks for the id of a topic name (6.9).
func (b *Broker) handleRegister(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	p := r.p
	rc, id := packet.Accepted, uint16(0)
	name := string(p.TopicName)
	switch {
	case topic.ValidateName(name) != nil:
		rc = packet.NotSupported
	case len(s.known) >= b.cfg.MaxTopicsPerClient && !b.knows(s, name):
		rc = packet.Congestion
		b.limitHit(LimitTopicsPerClient, s.clientID)
	default:
		var ok bool
		if id, ok = b.register(name); !ok {
			rc = packet.Congestion
			b.limitHit(LimitTopics, s.clientID)
		} else {
			b.markKnown(s, id)
		}
	}
	q := b.reply(packet.REGACK)
	q.TopicID, q.MsgID, q.ReturnCode = id, p.MsgID, rc
	return b.emitTo(out, s, r.mark)
}

func (b *Broker) knows(s *session, name string) bool {
	id, ok := b.topics.lookup(name)
	if !ok {
		return false
	}
	_, ok = s.known[id]
	return ok
}

func (b *Broker) markKnown(s *session, id uint16) {
	if s.known == nil {
		s.known = make(map[uint16]struct{})
	}
	if _, ok := s.known[id]; !ok {
		s.known[id] = struct{}{}
		b.dirty(s)
	}
	delete(s.refused, id)
}

// handleRegack: the client's answer to the broker's REGISTER (6.10).
func (b *Broker) handleRegack(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		b.c.drops[DropNoSession].Add(1)
		return out
	}
	p := r.p
	if s.reg == nil || s.reg.msgID != p.MsgID {
		b.c.drops[DropUnknownMsgID].Add(1)
		return out
	}
	reg := s.reg
	s.validated = true
	switch p.ReturnCode {
	case packet.Accepted:
		s.reg = nil
		b.markKnown(s, reg.topicID)
	case packet.Congestion:
		// Try again after T_RETRY; the retry is not counted against N_RETRY.
		reg.deadline = r.now.Add(b.cfg.RetryInterval)
		reg.retries = 0
		return out
	default:
		// A rejection means "do not send me this topic" (6.10): forget what is queued
		// on it and stop offering it.
		s.reg = nil
		if s.refused == nil {
			s.refused = make(map[uint16]struct{})
		}
		s.refused[reg.topicID] = struct{}{}
		b.dropQueuedTopic(s, reg.topicID)
	}
	return b.pump(s, r.now, out)
}

func (b *Broker) dropQueuedTopic(s *session, id uint16) {
	s.out.dropWhere(func(m *message) bool { return m.idType == packet.TopicNormal && m.topicID == id }, func(m *message) {
		b.journalMsgDel(s, m)
		b.c.drops[DropRefusedTopic].Add(1)
	})
}

// resolve decides how m's topic is named to subscribers: by a pre-defined id if the
// topic has one, as a short name if it is two characters, else by a normal id (assigned
// now if the topic has none) that each subscriber must have been told. It returns false
// if the topic table is full.
func (b *Broker) resolve(m *message) bool {
	if id, ok := b.predefByName[m.topic]; ok {
		m.idType, m.wireID = packet.TopicPredefined, id
		return true
	}
	if topic.IsShortName(m.topic) {
		m.idType, m.wireID = packet.TopicShort, topic.ShortID(m.topic)
		return true
	}
	m.idType = packet.TopicNormal
	if m.topicID == 0 {
		id, ok := b.register(m.topic)
		if !ok {
			b.limitHit(LimitTopics, "")
			return false
		}
		m.topicID = id
	}
	m.wireID = m.topicID
	return true
}
