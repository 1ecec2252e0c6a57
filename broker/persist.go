package broker

import (
	"fmt"
	"sort"
	"time"

	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/broker/packet"
)

// Persistence. With Config.Persist set, every call that changes durable state — a
// persistent (CleanSession=0) session's subscriptions, registrations, will and QoS 2
// receipts, the QoS 1/2 deliveries owed to it, retained messages and topic ids —
// appends journal records that the driver takes with TakeJournal and writes (and, under
// the strict policy, syncs) before sending that call's datagrams. Clean sessions are
// never journaled: they end with the connection anyway.

// TakeJournal returns the records produced since the last call and resets the buffer.
// The slice is valid until the next call to Receive, Tick or Inject.
func (b *Broker) TakeJournal() []byte {
	b.flushDirty()
	j := b.journal
	b.journal = b.journal[:0]
	return j
}

func (b *Broker) persistent(s *session) bool { return b.cfg.Persist && !s.clean && s.live }

// dirty marks a persistent session's metadata for a Session record at the end of the call.
func (b *Broker) dirty(s *session) {
	if !b.persistent(s) || s.dirty {
		return
	}
	s.dirty = true
	b.dirtyList = append(b.dirtyList, s)
}

func (b *Broker) flushDirty() {
	for i, s := range b.dirtyList {
		if s.live && s.dirty && !s.clean {
			b.journal = journal.AppendRecord(b.journal, journal.KindSession, b.encodeSession(s))
			s.persisted = true
		}
		s.dirty = false
		b.dirtyList[i] = nil
	}
	b.dirtyList = b.dirtyList[:0]
}

func (b *Broker) journalSessionDel(s *session) {
	if !b.cfg.Persist || !s.persisted {
		return
	}
	s.persisted = false
	w := journal.Writer{B: b.scratch[:0]}
	w.String(s.clientID)
	b.scratch = w.B
	b.journal = journal.AppendRecord(b.journal, journal.KindSessionDel, w.B)
}

func (b *Broker) journalTopic(id uint16, name string) {
	if !b.cfg.Persist {
		return
	}
	w := journal.Writer{B: b.scratch[:0]}
	w.U16(id)
	w.String(name)
	b.scratch = w.B
	b.journal = journal.AppendRecord(b.journal, journal.KindTopic, w.B)
}

func (b *Broker) journalRetain(name string, rm *retainedMsg) {
	if !b.cfg.Persist {
		return
	}
	w := journal.Writer{B: b.scratch[:0]}
	w.String(name)
	if rm == nil {
		w.U8(0)
		w.Bytes(nil)
	} else {
		w.U8(uint8(rm.qos))
		w.Bytes(rm.data)
	}
	b.scratch = w.B
	b.journal = journal.AppendRecord(b.journal, journal.KindRetain, w.B)
}

// journalMsg records (or updates) a delivery owed to a persistent session.
func (b *Broker) journalMsg(s *session, m *message, msgID uint16, awaiting packet.Type) {
	if !b.persistent(s) || m.qos == packet.QoS0 {
		return
	}
	if m.seq == 0 {
		b.nextSeq++
		m.seq = b.nextSeq
	}
	w := journal.Writer{B: b.scratch[:0]}
	w.String(s.clientID)
	w.U64(m.seq)
	w.String(m.topic)
	w.U16(m.topicID)
	w.U8(uint8(m.qos))
	w.Bool(m.retain)
	w.U16(msgID)
	w.U8(uint8(awaiting))
	w.Bytes(m.data)
	b.scratch = w.B
	b.journal = journal.AppendRecord(b.journal, journal.KindMsg, w.B)
}

func (b *Broker) journalMsgDel(s *session, m *message) {
	if !b.persistent(s) || m == nil || m.seq == 0 {
		return
	}
	w := journal.Writer{B: b.scratch[:0]}
	w.String(s.clientID)
	w.U64(m.seq)
	b.scratch = w.B
	b.journal = journal.AppendRecord(b.journal, journal.KindMsgDel, w.B)
}

func (b *Broker) encodeSession(s *session) []byte {
	w := journal.Writer{B: b.scratch[:0]}
	w.String(s.clientID)
	st := StateDisconnected
	if s.state == StateAsleep || s.state == StateAwake {
		st = StateAsleep
	}
	w.U8(uint8(st))
	w.U32(uint32(s.keepAlive / time.Second))
	w.U32(uint32(s.sleepFor / time.Second))
	w.U16(s.out.nextID)
	w.Bool(s.will.set)
	w.String(s.will.topic)
	w.Bytes(s.will.msg)
	w.U8(uint8(s.will.qos))
	w.Bool(s.will.retain)
	w.U32(uint32(len(s.filters)))
	for f, q := range s.filters {
		w.String(f)
		w.U8(q)
	}
	w.U32(uint32(len(s.known)))
	for id := range s.known {
		w.U16(id)
	}
	w.U32(uint32(len(s.qos2In)))
	for id, sum := range s.qos2In {
		w.U16(id)
		w.U64(sum)
	}
	b.scratch = w.B
	return w.B
}

// Snapshot appends records describing the whole durable state to dst: what a
// compacted log holds.
func (b *Broker) Snapshot(dst []byte) []byte {
	saved := b.journal
	b.journal = dst
	for id := 1; id < len(b.topics.names); id++ {
		b.journalTopic(uint16(id), b.topics.names[id])
	}
	for name, rm := range b.retained {
		b.journalRetain(name, rm)
	}
	for _, s := range b.sessions {
		if s == nil || !b.persistent(s) {
			continue
		}
		b.journal = journal.AppendRecord(b.journal, journal.KindSession, b.encodeSession(s))
		for i := range s.out.inflight {
			if in := &s.out.inflight[i]; in.msg != nil {
				b.journalMsg(s, in.msg, in.msgID, in.awaiting)
			}
		}
		for _, m := range s.out.queue {
			b.journalMsg(s, m, m.msgID, m.awaiting)
		}
	}
	out := b.journal
	b.journal = saved
	return out
}

// Restore rebuilds state from records (a log or a snapshot), before the broker serves.
// Persistent sessions come back disconnected (or asleep), with their owed deliveries
// queued to be resent — with DUP where they had been sent — when their clients return.
func (b *Broker) Restore(now time.Time, records []byte) error {
	msgs := make(map[string]map[uint64]*message)
	sessions := make(map[string]*session)
	for off := 0; off < len(records); {
		k, body, n, err := journal.Next(records[off:])
		if err != nil {
			return fmt.Errorf("broker: restore at offset %d: %w", off, err)
		}
		off += n
		r := journal.Reader{B: body}
		switch k {
		case journal.KindTopic:
			id, name := r.U16(), r.String()
			if r.Err == nil && id != 0 {
				for len(b.topics.names) <= int(id) {
					b.topics.names = append(b.topics.names, "")
				}
				if b.topics.names[id] == "" {
					b.c.gauges.topics.Add(1)
				}
				b.topics.names[id] = name
				b.topics.byName[name] = id
			}
		case journal.KindRetain:
			name, qos, data := r.String(), packet.QoS(r.U8()), r.Bytes()
			if r.Err != nil {
				break
			}
			_, had := b.retained[name]
			switch {
			case len(data) == 0 && had:
				delete(b.retained, name)
				b.c.gauges.retained.Add(-1)
			case len(data) > 0:
				if !had {
					b.c.gauges.retained.Add(1)
				}
				b.retained[name] = &retainedMsg{data: data, qos: qos}
			}
		case journal.KindSession:
			s := b.decodeSession(&r, sessions, now)
			if r.Err == nil && s != nil {
				sessions[s.clientID] = s
			}
		case journal.KindSessionDel:
			id := r.String()
			if s := sessions[id]; s != nil {
				b.deleteSession(s)
				delete(sessions, id)
			}
			delete(msgs, id)
		case journal.KindMsg:
			client, seq := r.String(), r.U64()
			m := &message{topic: r.String(), topicID: r.U16(), qos: packet.QoS(r.U8()), retain: r.Bool(), own: true}
			m.msgID, m.awaiting, m.data = r.U16(), packet.Type(r.U8()), r.Bytes()
			if r.Err != nil {
				break
			}
			m.seq = seq
			m.dup = m.msgID != 0
			if msgs[client] == nil {
				msgs[client] = make(map[uint64]*message)
			}
			msgs[client][seq] = m
			if seq > b.nextSeq {
				b.nextSeq = seq
			}
		case journal.KindMsgDel:
			client, seq := r.String(), r.U64()
			delete(msgs[client], seq)
		}
		if r.Err != nil {
			return fmt.Errorf("broker: restore %v record at offset %d: %w", k, off-n, r.Err)
		}
	}
	for client, owed := range msgs {
		s := sessions[client]
		if s == nil {
			continue
		}
		seqs := make([]uint64, 0, len(owed))
		for seq := range owed {
			seqs = append(seqs, seq)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, seq := range seqs {
			m := owed[seq]
			if !b.resolve(m) {
				continue
			}
			s.out.push(m)
		}
	}
	for _, s := range sessions {
		s.persisted = true
		b.scheduleIfLive(s)
	}
	return nil
}

func (b *Broker) decodeSession(r *journal.Reader, seen map[string]*session, now time.Time) *session {
	id := r.String()
	st := State(r.U8())
	keepAlive := time.Duration(r.U32()) * time.Second
	sleepFor := time.Duration(r.U32()) * time.Second
	nextMsgID := r.U16()
	w := will{set: r.Bool(), topic: r.String(), msg: r.Bytes(), qos: packet.QoS(r.U8()), retain: r.Bool()}
	if r.Err != nil {
		return nil
	}
	s := seen[id]
	if s == nil {
		if s = b.byClientID[id]; s == nil {
			s = b.newSession(id)
		}
	}
	// A session record replaces the previous one: reset what it lists.
	for f := range s.filters {
		if b.subs.Remove(f, s.sid) {
			b.c.gauges.subscriptions.Add(-1)
		}
	}
	s.filters, s.known, s.qos2In = nil, nil, nil
	s.keepAlive, s.sleepFor, s.out.nextID, s.will = keepAlive, sleepFor, nextMsgID, w
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		f, q := r.String(), r.U8()
		if r.Err != nil {
			break
		}
		if s.filters == nil {
			s.filters = make(map[string]uint8)
		}
		s.filters[f] = q
		if b.subs.Add(f, s.sid, q) {
			b.c.gauges.subscriptions.Add(1)
		}
	}
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		if id := r.U16(); r.Err == nil {
			b.markKnown(s, id)
		}
	}
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		if id, sum := r.U16(), r.U64(); r.Err == nil {
			if s.qos2In == nil {
				s.qos2In = make(map[uint16]uint64)
			}
			s.qos2In[id] = sum
		}
	}
	if st == StateAsleep && sleepFor > 0 {
		b.setState(s, StateAsleep)
		s.sleepUntil = now.Add(grace(sleepFor))
	} else {
		b.setState(s, StateDisconnected)
	}
	return s
}
