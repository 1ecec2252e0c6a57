package broker

import (
	"slices"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// topicTable assigns normal topic ids. The ids are global rather than per client, so a
// delivery fanned out to many subscribers uses the same id for all of them; each
// session records which ids its client has been told (session.known).
//
// Ids come back: each id counts its references — the sessions whose client was told it
// (markKnown, released by forgetKnown and wipe) and a retained message on its name —
// and one whose count falls to zero is freed at once, to be reused for another name.
// An id assigned that nobody was ever told (a will's or an injected topic's, for a
// delivery that needed none) is freed by a sweep when the table is full. Nothing else
// pins an id: a delivery queued under one checks, before it is sent, that the id still
// names its topic, and takes a fresh one if not (resolve, drain); a REGISTER in flight
// carries its name, and its REGACK is only taken for that name (handleRegack).
type topicTable struct {
	byName map[string]uint16
	names  []string // indexed by id; names[0] is unused (0x0000 is reserved); "" is free
	refs   []int32  // references per id
	free   []uint16 // freed ids, reused before the table grows
	n      int      // ids assigned
	unref  int      // ids assigned whose count is zero (candidates for the sweep)
	short  map[uint16]string
}

func (t *topicTable) init() {
	t.byName = make(map[string]uint16)
	t.names = []string{""}
	t.refs = []int32{0}
	t.short = make(map[uint16]string)
}

func (t *topicTable) lookup(name string) (uint16, bool) {
	id, ok := t.byName[name]
	return id, ok
}

func (t *topicTable) name(id uint16) (string, bool) {
	if int(id) < len(t.names) && id != 0 && t.names[id] != "" {
		return t.names[id], true
	}
	return "", false
}

// is reports whether id is assigned to name now.
func (t *topicTable) is(id uint16, name string) bool {
	return id != 0 && int(id) < len(t.names) && t.names[id] == name
}

func (t *topicTable) count() int { return t.n }

// assign gives name the id (both free), for register and Restore.
func (t *topicTable) assign(id uint16, name string) {
	for len(t.names) <= int(id) {
		t.free = append(t.free, uint16(len(t.names)))
		t.names = append(t.names, "")
		t.refs = append(t.refs, 0)
	}
	if i := slicesIndex(t.free, id); i >= 0 {
		t.free = append(t.free[:i], t.free[i+1:]...)
	}
	t.names[id] = name
	t.refs[id] = 0
	t.byName[name] = id
	t.n++
	t.unref++
}

// release frees id: its name has no id any more.
func (t *topicTable) release(id uint16) {
	delete(t.byName, t.names[id])
	t.names[id] = ""
	t.refs[id] = 0
	t.free = append(t.free, id)
	t.n--
	t.unref--
}

// slicesIndex finds v in s from the end (where assign usually finds it).
func slicesIndex(s []uint16, v uint16) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
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
// is full (MaxTopics) even after the ids nobody references were freed.
func (b *Broker) register(name string) (id uint16, ok bool) {
	t := &b.topics
	if id, ok := t.byName[name]; ok {
		return id, true
	}
	if t.n >= b.cfg.MaxTopics {
		b.sweepTopics()
		if t.n >= b.cfg.MaxTopics {
			return 0, false
		}
	}
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
	} else if len(t.names) <= 65534 {
		id = uint16(len(t.names))
	} else {
		return 0, false
	}
	t.assign(id, name)
	b.c.gauges.topics.Add(1)
	b.journalTopic(id, name)
	if _, ok := b.retained[name]; ok {
		b.ref(id, 1)
	}
	return id, true
}

// ref moves id's reference count by d, freeing it when nothing references it.
func (b *Broker) ref(id uint16, d int32) {
	t := &b.topics
	if id == 0 || int(id) >= len(t.names) || t.names[id] == "" {
		return
	}
	was, now := t.refs[id], t.refs[id]+d
	if now <= 0 {
		if was > 0 {
			t.unref++ // counted as unreferenced for the moment release uncounts it
		}
		b.topicFreed(id)
		return
	}
	t.refs[id] = now
	if was == 0 {
		t.unref--
	}
}

// retainRef moves the reference a retained message on name holds on its id (if any).
func (b *Broker) retainRef(name string, d int32) {
	if id, ok := b.topics.byName[name]; ok {
		b.ref(id, d)
	}
}

func (b *Broker) topicFreed(id uint16) {
	b.topics.release(id)
	b.c.gauges.topics.Add(-1)
	b.c.topicsFreed.Add(1)
}

// sweepTopics frees every assigned id nothing references (once per id assigned
// unreferenced, so a full table of referenced ids costs nothing more per REGISTER).
func (b *Broker) sweepTopics() {
	t := &b.topics
	if t.unref == 0 {
		return
	}
	for id := 1; id < len(t.names); id++ {
		if t.names[id] != "" && t.refs[id] == 0 {
			b.topicFreed(uint16(id))
		}
	}
	t.unref = 0
}

// releaseUnused frees every id nothing references (after Restore).
func (b *Broker) releaseUnused() { b.sweepTopics() }

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
	case !b.topicFits(name):
		b.limitHit(LimitTopicLength, s.clientID)
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
		b.ref(id, 1)
		b.dirty(s)
	}
	if _, ok := s.refused[id]; ok {
		delete(s.refused, id)
		b.ref(id, -1)
	}
}

// forgetKnown forgets that s's client was told id.
func (b *Broker) forgetKnown(s *session, id uint16) {
	if _, ok := s.known[id]; ok {
		delete(s.known, id)
		b.ref(id, -1)
		b.dirty(s)
	}
}

// clearKnown forgets every id s's client was told. The references are released in id
// order, not map order: the ids freed join the free list in that order, and which id
// the next topic gets must not depend on a map's iteration (determinism).
func (b *Broker) clearKnown(s *session) {
	ids := b.idScratch[:0]
	for id := range s.known {
		ids = append(ids, id)
	}
	for id := range s.refused {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b.ref(id, -1)
	}
	b.idScratch = ids[:0]
	s.known, s.refused = nil, nil
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
		if b.topics.is(reg.topicID, reg.name) {
			b.markKnown(s, reg.topicID) // else the id went to another name meanwhile: the queue re-resolves
		}
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
		if _, ok := s.refused[reg.topicID]; !ok && b.topics.is(reg.topicID, reg.name) {
			s.refused[reg.topicID] = struct{}{} // holds the id: a reuse must not inherit the refusal
			b.ref(reg.topicID, 1)
		}
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
	if m.topicID == 0 || !b.topics.is(m.topicID, m.topic) {
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
