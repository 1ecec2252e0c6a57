package broker

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// RestoreReport says what Restore rebuilt and what it left out. Nothing in a journal
// can stop the broker from starting: a record that does not decode is skipped, and
// state beyond a configured limit (or no longer valid under it) is dropped; both are
// counted here for the driver to log.
type RestoreReport struct {
	Records     int   // records read
	Undecodable int   // records skipped: damaged framing, or a body that does not decode
	FirstError  error // why the first of them was skipped

	// What came back.
	Sessions, Subscriptions, Registrations, Messages, Retained, Topics int

	// What was left out: over a configured limit (max_clients, max_subscriptions_per_
	// client, max_queued_per_client (+ the in-flight window), max_qos2_incoming,
	// max_retained, max_topics, max_payload, max_topic_length, max_topic_levels,
	// max_client_id_length) or invalid under it.
	DroppedSessions, DroppedSubscriptions, DroppedRegistrations   int
	DroppedMessages, DroppedRetained, DroppedTopics, DroppedWills int
}

// Dropped is the sum of everything left out for a limit.
func (r *RestoreReport) Dropped() int {
	return r.DroppedSessions + r.DroppedSubscriptions + r.DroppedRegistrations + r.DroppedMessages +
		r.DroppedRetained + r.DroppedTopics + r.DroppedWills
}

// savedSession is a session record, decoded and not yet applied.
type savedSession struct {
	pos       int // index of the record in the log: later wins
	clientID  string
	state     State
	keepAlive time.Duration
	sleepFor  time.Duration
	nextID    uint16
	will      will
	filters   []savedFilter
	known     []uint16
	qos2      []savedQoS2
}

type savedFilter struct {
	filter string
	qos    uint8
}

type savedQoS2 struct {
	msgID uint16
	sum   uint64
}

type savedTopic struct {
	name string
	pos  int
}

// restoring is the state a log describes, read record by record before any of it is
// applied (so a limit applies to the end state, not to a transient one).
type restoring struct {
	topics   map[uint16]savedTopic
	retained map[string]*retainedMsg
	sessions map[string]*savedSession
	msgs     map[string]map[uint64]*message
	report   RestoreReport
}

var errTrailing = errors.New("octets left after the last field")

// Restore rebuilds state from records (a log or a snapshot) before the broker serves.
// Persistent sessions come back disconnected (or asleep), with their owed deliveries
// queued to be resent — with DUP where they had been sent — when their clients return.
//
// Restore never fails: damaged framing is resynchronised over (journal.Recover), a
// record whose body does not decode is skipped, and everything is held to the
// configured limits as if it had arrived now; the report counts what was left out.
func (b *Broker) Restore(now time.Time, records []byte) RestoreReport {
	st := &restoring{
		topics:   make(map[uint16]savedTopic),
		retained: make(map[string]*retainedMsg),
		sessions: make(map[string]*savedSession),
		msgs:     make(map[string]map[uint64]*message),
	}
	valid, damaged := journal.Recover(records)
	for _, d := range damaged {
		st.skip(fmt.Errorf("broker: restore: %d damaged octets at offset %d: %w", d.Len, d.Offset, d.Err))
	}
	for off, pos := 0, 0; off < len(valid); pos++ {
		k, body, n, _ := journal.Next(valid[off:]) // Recover kept only whole records
		if err := st.read(k, body, pos); err != nil {
			st.skip(fmt.Errorf("broker: restore: %v record at offset %d: %w", k, off, err))
		}
		st.report.Records++
		off += n
	}
	b.applyTopics(st)
	b.applyRetained(st)
	b.applySessions(st, now)
	b.releaseUnused()
	return st.report
}

func (st *restoring) skip(err error) {
	if st.report.FirstError == nil {
		st.report.FirstError = err
	}
	st.report.Undecodable++
}

// read decodes one record into st; a body that does not decode whole changes nothing.
func (st *restoring) read(k journal.Kind, body []byte, pos int) error {
	r := journal.Reader{B: body}
	done := func() error {
		if r.Err == nil && len(r.B) > 0 {
			r.Err = errTrailing
		}
		return r.Err
	}
	switch k {
	case journal.KindTopic:
		id, name := r.U16(), r.String()
		if err := done(); err != nil {
			return err
		}
		if id == packet.TopicIDReserved0 || id == packet.TopicIDReservedMax {
			return fmt.Errorf("reserved topic id %d", id)
		}
		st.topics[id] = savedTopic{name: name, pos: pos}
	case journal.KindRetain:
		name, qos, data := r.String(), packet.QoS(r.U8()), r.Bytes()
		if err := done(); err != nil {
			return err
		}
		if volatileRetained(name) {
			break // $SYS: written by an older version, stale by now
		}
		if len(data) == 0 {
			delete(st.retained, name)
		} else {
			st.retained[name] = &retainedMsg{data: data, qos: qos}
		}
	case journal.KindSession:
		s := decodeSavedSession(&r)
		if err := done(); err != nil {
			return err
		}
		s.pos = pos
		st.sessions[s.clientID] = s
	case journal.KindSessionDel:
		id := r.String()
		if err := done(); err != nil {
			return err
		}
		delete(st.sessions, id)
		delete(st.msgs, id)
	case journal.KindMsg:
		client, seq := r.String(), r.U64()
		m := &message{topic: r.String(), topicID: r.U16(), qos: packet.QoS(r.U8()), retain: r.Bool(), own: true}
		m.msgID, m.awaiting, m.data = r.U16(), packet.Type(r.U8()), r.Bytes()
		if err := done(); err != nil {
			return err
		}
		m.seq = seq
		m.dup = m.msgID != 0
		if st.msgs[client] == nil {
			st.msgs[client] = make(map[uint64]*message)
		}
		st.msgs[client][seq] = m
	case journal.KindMsgDel:
		client, seq := r.String(), r.U64()
		if err := done(); err != nil {
			return err
		}
		delete(st.msgs[client], seq)
	default:
		return fmt.Errorf("unknown record kind %d", k)
	}
	return nil
}

func decodeSavedSession(r *journal.Reader) *savedSession {
	s := &savedSession{clientID: r.String(), state: State(r.U8())}
	s.keepAlive = time.Duration(r.U32()) * time.Second
	s.sleepFor = time.Duration(r.U32()) * time.Second
	s.nextID = r.U16()
	s.will = will{set: r.Bool(), topic: r.String(), msg: r.Bytes(), qos: packet.QoS(r.U8()), retain: r.Bool()}
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		if f, q := r.String(), r.U8(); r.Err == nil {
			s.filters = append(s.filters, savedFilter{f, q})
		}
	}
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		if id := r.U16(); r.Err == nil {
			s.known = append(s.known, id)
		}
	}
	for n := r.U32(); n > 0 && r.Err == nil; n-- {
		if id, sum := r.U16(), r.U64(); r.Err == nil {
			s.qos2 = append(s.qos2, savedQoS2{id, sum})
		}
	}
	return s
}

// validTopic reports whether a topic name or filter read back is valid and within the
// limits a client's would be held to. A short topic name (two octets, neither a
// wildcard: 6.7) is valid whatever its octets, as it is when a client uses it.
func (b *Broker) validTopic(name string, filter bool) bool {
	if topic.IsShortName(name) {
		return true
	}
	var err error
	if filter {
		err = topic.ValidateFilter(name)
	} else {
		err = topic.ValidateName(name)
	}
	return err == nil && b.topicFits(name)
}

// restorableName reports whether a retained message's or an owed delivery's topic read
// back is one the engine could have published on: a valid topic name (of any length:
// injected and pre-defined names are not held to max_topic_length), or a short name.
func restorableName(name string) bool {
	return topic.IsShortName(name) || topic.ValidateName(name) == nil
}

// applyTopics assigns the topic ids read back: valid names within the limits, one id
// per name (the latest assignment wins), at most MaxTopics.
func (b *Broker) applyTopics(st *restoring) {
	latest := make(map[string]uint16, len(st.topics))
	for id, t := range st.topics {
		if prev, ok := latest[t.name]; !ok || st.topics[prev].pos < t.pos {
			latest[t.name] = id
		}
	}
	ids := make([]uint16, 0, len(st.topics))
	for id, t := range st.topics {
		switch {
		case latest[t.name] != id: // superseded: the name was given another id later
		case b.validTopic(t.name, false):
			ids = append(ids, id)
		default:
			st.report.DroppedTopics++
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		name := st.topics[id].name
		if _, taken := b.topics.byName[name]; taken || b.topics.count() >= b.cfg.MaxTopics {
			st.report.DroppedTopics++
			continue
		}
		b.topics.assign(id, name)
		b.c.gauges.topics.Add(1)
		st.report.Topics++
	}
}

// applyRetained stores the retained messages read back, in name order, at most
// MaxRetained, each valid and within max_payload.
func (b *Broker) applyRetained(st *restoring) {
	names := make([]string, 0, len(st.retained))
	for name := range st.retained {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rm := st.retained[name]
		_, had := b.retained[name]
		if !restorableName(name) || len(rm.data) > b.cfg.MaxPayload || rm.qos < packet.QoS0 || rm.qos > packet.QoS2 ||
			(!had && len(b.retained) >= b.cfg.MaxRetained) {
			st.report.DroppedRetained++
			continue
		}
		if !had {
			b.c.gauges.retained.Add(1)
			b.retainedIdx.Add(name)
		}
		b.retained[name] = rm
		b.retainRef(name, 1)
		st.report.Retained++
	}
}

// applySessions rebuilds the persistent sessions read back. Under max_clients the most
// recently written are kept. Each is held to the per-client limits.
func (b *Broker) applySessions(st *restoring, now time.Time) {
	saved := make([]*savedSession, 0, len(st.sessions))
	for _, s := range st.sessions {
		saved = append(saved, s)
	}
	slices.SortFunc(saved, func(x, y *savedSession) int { return y.pos - x.pos })
	for _, ss := range saved {
		s := b.byClientID[ss.clientID]
		switch {
		case len(ss.clientID) == 0 || len(ss.clientID) > b.cfg.MaxClientIDLen || (ss.state != StateDisconnected && ss.state != StateAsleep):
			st.report.DroppedSessions++
			delete(st.msgs, ss.clientID)
			continue
		case s == nil && b.live >= b.cfg.MaxClients:
			st.report.DroppedSessions++
			st.report.DroppedMessages += len(st.msgs[ss.clientID])
			delete(st.msgs, ss.clientID)
			continue
		case s == nil:
			s = b.newSession(ss.clientID)
		default:
			b.wipe(s) // Restore over a serving broker: the log's version wins
		}
		b.applySession(s, ss, st, now)
		b.applyOwed(s, st.msgs[ss.clientID], st)
		s.persisted = true
		b.scheduleIfLive(s)
		st.report.Sessions++
	}
	for _, owed := range st.msgs {
		for _, m := range owed {
			b.noteSeq(m.seq) // a session that did not come back must not reuse its seqs
		}
	}
}

func (b *Broker) applySession(s *session, ss *savedSession, st *restoring, now time.Time) {
	s.keepAlive, s.sleepFor, s.out.nextID = ss.keepAlive, ss.sleepFor, ss.nextID
	s.will = will{}
	if w := ss.will; w.set || w.topic != "" || len(w.msg) > 0 {
		if (w.topic == "" || b.validTopic(w.topic, false)) && w.qos >= packet.QoSMinus1 && w.qos <= packet.QoS2 && b.recordRoom(s, len(w.topic)+len(w.msg)) {
			s.will = w
		} else {
			st.report.DroppedWills++
		}
	}
	for _, f := range ss.filters {
		_, dup := s.filters[f.filter]
		switch {
		case dup:
		case !b.validTopic(f.filter, true) || f.qos > 2 || len(s.filters) >= b.cfg.MaxSubsPerClient ||
			!b.recordRoom(s, filterEntryLen+len(f.filter)+knownEntryLen):
			st.report.DroppedSubscriptions++
		default:
			b.addFilter(s, f.filter, f.qos)
			st.report.Subscriptions++
		}
	}
	// Registrations are not held to MaxTopicsPerClient: that bounds the ids a client
	// asks for, while the broker REGISTERs every topic a wildcard subscription brings.
	// Each must name a topic id restored, so MaxTopics bounds them.
	for _, id := range ss.known {
		if _, ok := b.topics.name(id); !ok {
			st.report.DroppedRegistrations++
			continue
		}
		b.markKnown(s, id)
		st.report.Registrations++
	}
	for _, q := range ss.qos2 {
		if len(s.qos2In) >= b.cfg.MaxQoS2Incoming {
			st.report.DroppedMessages++ // its PUBREL will find nothing: at worst a duplicate
			continue
		}
		if s.qos2In == nil {
			s.qos2In = make(map[uint16]uint64)
		}
		s.qos2In[q.msgID] = q.sum
	}
	if ss.state == StateAsleep && ss.sleepFor > 0 {
		b.setState(s, StateAsleep)
		s.sleepUntil = now.Add(grace(ss.sleepFor))
	} else {
		b.setState(s, StateDisconnected)
	}
	s.dirty = false
}

// applyOwed queues the deliveries owed to s, in journal order, at most owedMax of
// them, each valid under the limits.
func (b *Broker) applyOwed(s *session, owed map[uint64]*message, st *restoring) {
	seqs := make([]uint64, 0, len(owed))
	for seq := range owed {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	ids := make(map[uint16]bool)
	for _, seq := range seqs {
		m := owed[seq]
		b.noteSeq(seq)
		ok := restorableName(m.topic) && m.qos >= packet.QoS1 && m.qos <= packet.QoS2 &&
			len(m.data) <= b.cfg.MaxPayload && s.out.queued() < b.owedMax()
		switch m.awaiting {
		case 0, packet.PUBACK, packet.PUBREC, packet.PUBCOMP:
		default:
			ok = false
		}
		// The id the record names may since have gone to another topic: look it up.
		m.topicID, _ = b.topics.lookup(m.topic)
		if !ok || !b.resolve(m) {
			st.report.DroppedMessages++
			continue
		}
		if m.msgID != 0 && ids[m.msgID] {
			m.msgID, m.dup, m.awaiting = 0, false, 0 // two owed on one id: give this one a new one
		} else if m.msgID != 0 {
			ids[m.msgID] = true
		}
		s.out.push(m)
		st.report.Messages++
	}
}

// owedMax is how many deliveries a session can be owed: a full queue
// (MaxQueuedPerClient) and a full in-flight window behind it, which requeue puts back
// at the head of the queue when the client goes away.
func (b *Broker) owedMax() int { return b.cfg.MaxQueuedPerClient + b.cfg.InflightWindow }

func (b *Broker) noteSeq(seq uint64) {
	if seq > b.nextSeq {
		b.nextSeq = seq
	}
}
