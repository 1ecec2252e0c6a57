package broker

import (
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/broker/packet"
)

// Persistence. With Config.Persist set, every call that changes durable state — a
// persistent (CleanSession=0) session's subscriptions, registrations, will and QoS 2
// receipts, the QoS 1/2 deliveries owed to it, retained messages and topic ids —
// appends journal records that the driver takes with TakeJournal and writes (and, under
// the strict policy, syncs) before sending that call's datagrams. Clean sessions are
// never journaled: they end with the connection anyway. Nor are retained messages on
// `$SYS/` topics: the driver republishes them from its own counters, so they live in
// memory only — journalling them would keep an idle broker writing (flash wear) and
// bring stale values back after a restart (Restore skips any an older log holds).

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
	if !b.cfg.Persist || volatileRetained(name) {
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

// volatileRetained reports whether a retained message on topic name stays out of the
// journal: the `$SYS/` topics, which describe the running process.
func volatileRetained(name string) bool { return strings.HasPrefix(name, "$SYS/") }

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
		if name := b.topics.names[id]; name != "" {
			b.journalTopic(uint16(id), name)
		}
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
