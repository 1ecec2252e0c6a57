package broker

import (
	"fmt"

	"github.com/musqratt/musqratt/broker/topic"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// handlePublish: a client publishes (6.8, 6.12). Delivery happens on receipt, before the
// acknowledgement is queued, so QoS 1 and 2 add no round trip to the subscriber's latency.
func (b *Broker) handlePublish(r *request, s *session, out []Datagram) []Datagram {
	p := r.p
	qos := p.Flags.QoS()
	if qos == packet.QoSMinus1 {
		return b.publishQoSMinus1(r, out)
	}
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	// b.inMsg, not a local: sendPublish may keep its argument (inflight), which would
	// move a local to the heap on every PUBLISH. Nothing keeps it past this call.
	m := &b.inMsg
	*m = message{data: p.Data, qos: qos, retain: p.Flags.Retain(), mark: r.mark}
	if rc := b.resolveIncoming(p, m); rc != packet.Accepted {
		return b.puback(out, s, p, rc, r.mark)
	}
	if len(p.Data) > b.cfg.MaxPayload {
		b.limitHit(LimitPayload, s.clientID)
		return b.puback(out, s, p, packet.Congestion, r.mark)
	}
	if b.cfg.Access != nil && !b.cfg.Access.allowed(s.clientID, ActionPublish, m.topic) {
		b.c.drops[DropDenied].Add(1)
		b.denied(s, "publish "+m.topic)
		if qos == packet.QoS0 {
			return out
		}
		return b.puback(out, s, p, packet.NotSupported, r.mark)
	}
	if b.cfg.Trace != nil {
		b.cfg.Trace(StageDecoded)
	}
	switch qos {
	case packet.QoS0:
		return b.publish(r.now, m, OriginClient, out)
	case packet.QoS1:
		// Accepted means delivered to every matching subscriber's outbox (offer):
		// otherwise the PUBACK waits with the held publication (hold.go).
		var ok bool
		if out, ok = b.offer(r, s, m, out); !ok {
			return out
		}
		return b.puback(out, s, p, packet.Accepted, r.mark)
	}
	// QoS 2: deliver on the first PUBLISH, remember its msg id until PUBREL so that
	// a retransmitted PUBLISH (its PUBREC was lost) is acknowledged, not delivered again.
	if _, dup := s.qos2In[p.MsgID]; !dup && !b.recentlyReleased(s, p, r.now) {
		// Held QoS 2 publications count: each becomes a receipt when it is delivered.
		if len(s.qos2In)+b.heldQoS2(s) >= b.cfg.MaxQoS2Incoming && b.findHeld(s, p.MsgID) < 0 {
			b.limitHit(LimitQoS2Incoming, s.clientID)
			return b.puback(out, s, p, packet.Congestion, r.mark)
		}
		var ok bool
		if out, ok = b.offer(r, s, m, out); !ok {
			return out // held: PUBREC when it is delivered
		}
		b.receivedQoS2(s, p.MsgID, publishSum(p))
	}
	q := b.reply(packet.PUBREC)
	q.MsgID = p.MsgID
	return b.emitTo(out, s, r.mark)
}

// receivedQoS2 remembers an accepted QoS 2 publication until its PUBREL.
func (b *Broker) receivedQoS2(s *session, msgID uint16, sum uint64) {
	if s.qos2In == nil {
		s.qos2In = make(map[uint16]uint64)
	}
	s.qos2In[msgID] = sum
	b.dirty(s)
}

// publishQoSMinus1: a PUBLISH from anyone, connected or not, on a pre-defined id or short
// name (6.8). Nothing is ever sent back, so it cannot be used for reflection.
func (b *Broker) publishQoSMinus1(r *request, out []Datagram) []Datagram {
	p := r.p
	// b.inMsg, not a local: sendPublish may keep its argument (inflight), which would
	// move a local to the heap on every PUBLISH. Nothing keeps it past this call.
	m := &b.inMsg
	*m = message{data: p.Data, qos: packet.QoS0, retain: p.Flags.Retain(), mark: r.mark}
	if p.Flags.TopicIDType() == packet.TopicNormal {
		b.c.drops[DropQoSMinus1Normal].Add(1)
		return out
	}
	if b.resolveIncoming(p, m) != packet.Accepted || len(p.Data) > b.cfg.MaxPayload {
		b.c.drops[DropBadState].Add(1)
		return out
	}
	if b.cfg.Access != nil && (!b.cfg.Access.addrAllowed(r.from.addr) || !b.cfg.Access.allowed("-", ActionPublish, m.topic)) {
		b.c.drops[DropDenied].Add(1)
		return out
	}
	return b.publish(r.now, m, OriginClient, out)
}

// resolveIncoming finds the topic name of an incoming PUBLISH.
func (b *Broker) resolveIncoming(p *packet.Packet, m *message) packet.ReturnCode {
	switch p.Flags.TopicIDType() {
	case packet.TopicNormal:
		name, ok := b.topics.name(p.TopicID)
		if !ok {
			return packet.InvalidTopicID
		}
		m.topic, m.topicID = name, p.TopicID
	case packet.TopicPredefined:
		name, ok := b.cfg.Predefined[p.TopicID]
		if !ok {
			return packet.InvalidTopicID
		}
		m.topic = name
		m.topicID, _ = b.topics.lookup(name)
	case packet.TopicShort:
		m.topic = b.topics.shortName(p.TopicID)
		if !topic.IsShortName(m.topic) {
			return packet.InvalidTopicID // "a#", "+b": a topic name holds no wildcard
		}
	default:
		return packet.InvalidTopicID
	}
	return packet.Accepted
}

func (b *Broker) puback(out []Datagram, s *session, p *packet.Packet, rc packet.ReturnCode, mark uint64) []Datagram {
	q := b.reply(packet.PUBACK)
	q.TopicID, q.MsgID, q.ReturnCode = p.TopicID, p.MsgID, rc
	return b.emitTo(out, s, mark)
}

// publish stores m if retained and fans it out to every matching subscription.
// origin says who published it (for counters and OnPublish). A full outbox drops the
// delivery (counted): publications that can wait for room go through offer instead.
func (b *Broker) publish(now time.Time, m *message, origin Origin, out []Datagram) []Datagram {
	if origin == OriginClient {
		b.c.publishesIn.Add(1)
	}
	if !b.resolve(m) {
		return out
	}
	b.matches = b.subs.MatchAppend(b.matches[:0], m.topic)
	return b.fanout(now, m, origin, false, true, out)
}

// fanout delivers m (resolved) to the subscribers in b.matches. canWait says the
// back-pressure rule found room in every outbox that would push back (offer); trace
// says the publication is the input being handled (not a held one released later).
func (b *Broker) fanout(now time.Time, m *message, origin Origin, canWait, trace bool, out []Datagram) []Datagram {
	if b.cfg.OnPublish != nil {
		b.cfg.OnPublish(m.topic, m.data, int8(m.qos), m.retain, origin)
	}
	if m.retain {
		b.storeRetained(m)
	}
	// A live delivery to an existing subscription carries Retain=0 (MQTT 3.1.1 3.3.1.3).
	retain := m.retain
	m.retain = false
	defer func() { m.retain = retain }()

	trace = trace && b.cfg.Trace != nil
	if trace {
		b.cfg.Trace(StageMatched)
	}
	first := len(out)
	defer func() {
		if trace && len(out) > first {
			b.cfg.Trace(StageQueued)
		}
	}()
	var shared *message // the owned copy, made once if any subscriber must queue
	for _, e := range b.matches {
		s := b.sessions[e.Sub]
		q := deliveryQoS(m.qos, e.QoS)
		if s.connected() && s.out.queued() == 0 && b.canSendNow(s, m, q) {
			out = b.sendPublish(s, m, q, now, out)
			continue
		}
		if v, why := s.out.admit(s.audience(), b.admitting(q, canWait)); v == verdictDrop {
			b.dropped(s, why)
			continue
		}
		if shared == nil {
			shared = m.owned()
		}
		out = b.enqueue(s, shared, q, now, out)
	}
	return out
}

// deliveryQoS is min(publication QoS, granted QoS), QoS -1 delivered as 0.
func deliveryQoS(q packet.QoS, granted uint8) packet.QoS {
	if packet.QoS(granted) < q {
		q = packet.QoS(granted)
	}
	if q < 0 {
		q = packet.QoS0
	}
	return q
}

func (b *Broker) admitting(q packet.QoS, canWait bool) admitting {
	return admitting{qos: q, canWait: canWait, queueMax: b.cfg.MaxQueuedPerClient, sleepMax: b.cfg.MaxSleepBuffer}
}

// dropped counts a delivery the back-pressure rule dropped for s (NumDrops: nothing
// was kept because nothing is owed, not counted).
func (b *Broker) dropped(s *session, why Drop) {
	if why >= NumDrops {
		return
	}
	b.c.drops[why].Add(1)
	l := LimitQueue
	if why == DropSleepBufferFull {
		l = LimitSleepBuffer
	}
	b.limitHit(l, s.clientID)
}

// owned returns a copy of m that owns its payload, for queues.
func (m *message) owned() *message {
	c := *m
	c.data = append([]byte(nil), m.data...)
	c.own = true
	return &c
}

// canSendNow reports whether m can go to s immediately: its topic id is known (or
// needs none) and, for QoS 1/2, the inflight window has room.
func (b *Broker) canSendNow(s *session, m *message, q packet.QoS) bool {
	if m.idType == packet.TopicNormal {
		if _, ok := s.known[m.topicID]; !ok || !b.topics.is(m.topicID, m.topic) {
			return false
		}
	}
	if !b.withinBudget(s, publishLen(m)+challengeLen(m)) {
		return false
	}
	return q == packet.QoS0 || !s.out.windowFull(b.cfg.InflightWindow)
}

// enqueue adds a delivery the back-pressure rule admitted to s's queue, then tries to
// move the queue.
func (b *Broker) enqueue(s *session, shared *message, q packet.QoS, now time.Time, out []Datagram) []Datagram {
	b.queueDelivery(s, shared, q)
	return b.pump(s, now, out)
}

// queueDelivery queues shared for s at QoS q (unless s refused its topic).
func (b *Broker) queueDelivery(s *session, shared *message, q packet.QoS) {
	if _, refused := s.refused[shared.topicID]; refused && shared.idType == packet.TopicNormal {
		b.c.drops[DropRefusedTopic].Add(1)
		return
	}
	m := shared
	if q != shared.qos || shared.retain || s.state == StateAsleep {
		c := *shared // per-subscriber QoS and sleep mark; the payload stays shared
		c.qos = q
		c.sleepBuffered = s.state == StateAsleep
		m = &c
	}
	s.out.push(m)
	b.journalMsg(s, m, 0, 0)
}

// pump sends what the session's queue allows: queued messages in order until a QoS 1/2
// delivery finds the window full or a topic needs a REGISTER first; then, as room
// frees, it wakes publishers held for this outbox (hold.go) or feeds it the retained
// messages a subscription still owes. An awake client whose queue is empty gets
// PINGRESP and goes back to sleep (6.14).
func (b *Broker) pump(s *session, now time.Time, out []Datagram) []Datagram {
	if !s.connected() {
		return out
	}
	for {
		out = b.drain(s, now, out)
		if s.out.freed(b.cfg.MaxQueuedPerClient) {
			b.heldWake = true // held publications first; the backlog after them
			break
		}
		if !b.feedBacklog(s) {
			break
		}
	}
	if s.state == StateAwake && s.out.idle() && s.reg == nil {
		q := b.reply(packet.PINGRESP)
		_ = q
		out = b.emitTo(out, s, 0)
		b.setState(s, StateAsleep)
		s.sleepUntil = now.Add(grace(s.sleepFor))
		b.schedule(s)
	}
	return out
}

// drain sends queued deliveries in order while the window, the topic registrations
// and the amplification budget allow.
func (b *Broker) drain(s *session, now time.Time, out []Datagram) []Datagram {
	for s.out.queued() > 0 {
		m := s.out.head()
		if m.idType == packet.TopicNormal && !b.topics.is(m.topicID, m.topic) {
			// Its id was freed (and maybe reused) while it waited: take the current one.
			if m.topicID = 0; !b.resolve(m) {
				b.journalMsgDel(s, m)
				s.out.pop()
				continue
			}
		}
		if m.idType == packet.TopicNormal {
			if _, refused := s.refused[m.topicID]; refused {
				b.journalMsgDel(s, m)
				s.out.pop()
				b.c.drops[DropRefusedTopic].Add(1)
				continue
			}
			if _, ok := s.known[m.topicID]; !ok {
				switch {
				case s.reg != nil:
				case b.withinBudget(s, registerLen(b, m.topicID)):
					out = b.sendRegister(s, m.topicID, 0, now, m.mark, out)
				default:
					out = b.challenge(s, m, now, out) // the REGISTER does not fit yet
				}
				break
			}
		}
		if m.qos > packet.QoS0 && s.out.windowFull(b.cfg.InflightWindow) {
			break
		}
		if !b.withinBudget(s, publishLen(m)+challengeLen(m)) {
			out = b.challenge(s, m, now, out)
			break
		}
		s.out.pop()
		out = b.sendPublish(s, m, m.qos, now, out)
	}
	return out
}

// sendRegister sends REGISTER for topicID; msgID 0 starts a new registration, any other
// value is a retransmission, which keeps its msg id and retry count.
func (b *Broker) sendRegister(s *session, topicID, msgID uint16, now time.Time, mark uint64, out []Datagram) []Datagram {
	if msgID == 0 {
		name, _ := b.topics.name(topicID)
		s.reg = &pendingRegister{msgID: s.newMsgID(), topicID: topicID, name: name}
	}
	s.reg.deadline = now.Add(b.cfg.RetryInterval)
	b.schedule(s)
	q := b.reply(packet.REGISTER)
	q.TopicID, q.MsgID = topicID, s.reg.msgID
	q.TopicName = append(q.TopicName[:0], s.reg.name...) // a resend names what the first did
	return b.emitTo(out, s, mark)
}

// sendPublish transmits m to s at QoS q; for QoS 1/2 the encoded datagram is kept in
// the inflight slot (reusing its buffer) to be resent with DUP.
func (b *Broker) sendPublish(s *session, m *message, q packet.QoS, now time.Time, out []Datagram) []Datagram {
	p := b.reply(packet.PUBLISH)
	flags := packet.Flags(0).WithQoS(q).WithTopicIDType(m.idType)
	if m.retain {
		flags |= packet.FlagRetain
	}
	if m.dup {
		flags |= packet.FlagDUP
	}
	p.Flags, p.TopicID, p.Data = flags, m.wireID, m.data
	awaiting := packet.PUBACK
	if q > packet.QoS0 {
		if m.dup && m.msgID != 0 {
			p.MsgID = m.msgID
			awaiting = m.awaiting
		} else {
			p.MsgID = s.newMsgID()
			if q == packet.QoS2 {
				awaiting = packet.PUBREC
			}
		}
	}
	if awaiting == packet.PUBCOMP {
		// Resuming a QoS 2 delivery the client already received: only PUBREL is due.
		out = b.sendPubrel(s, p.MsgID, m.mark, out)
	} else {
		out = b.emitTo(out, s, m.mark)
	}
	if !m.dup {
		b.c.deliveries.Add(1)
	}
	if q == packet.QoS0 {
		return out
	}
	var enc []byte
	if awaiting != packet.PUBCOMP { // else only PUBREL is ever resent
		enc = out[len(out)-1].B
		enc = enc[len(enc)-packet.Len(p):] // the PUBLISH without any encapsulation
	}
	in := s.out.addInflight() // keeps the slot's buffer
	*in = inflight{
		msgID:    p.MsgID,
		qos:      q,
		awaiting: awaiting,
		buf:      append(in.buf, enc...),
		dupAt:    headerLen(len(enc)),
		deadline: now.Add(b.cfg.RetryInterval),
		mark:     m.mark,
	}
	if !s.clean {
		// A persistent session must be able to requeue it if the client goes away, at
		// the QoS it was sent with (the subscription's, if lower than the publication's).
		if !m.own {
			m = m.owned()
			m.qos = q
		} else if m.qos != q {
			c := *m
			c.qos = q
			m = &c
		}
		in.msg = m
		b.journalMsg(s, m, in.msgID, awaiting)
	}
	p.Data = nil
	b.schedule(s) // the retransmission timer may be earlier than anything scheduled
	return out
}

func headerLen(n int) int {
	if n > 255 {
		return 4
	}
	return 2
}

func (b *Broker) sendPubrel(s *session, msgID uint16, mark uint64, out []Datagram) []Datagram {
	q := b.reply(packet.PUBREL)
	q.MsgID = msgID
	return b.emitTo(out, s, mark)
}

// completeInflight removes inflight entry i (its buffer stays for reuse) and returns
// it; the copy's buf must not be kept.
func (b *Broker) completeInflight(s *session, i int) inflight {
	b.journalMsgDel(s, s.out.inflight[i].msg)
	return s.out.complete(i)
}

func (b *Broker) handlePuback(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		b.c.drops[DropNoSession].Add(1)
		return out
	}
	p := r.p
	i := s.out.find(p.MsgID)
	if i < 0 || s.out.inflight[i].awaiting == packet.PUBCOMP {
		b.c.drops[DropUnknownMsgID].Add(1)
		return out
	}
	s.validated = true
	switch p.ReturnCode {
	case packet.Congestion:
		// The client asks us to back off: resend after T_RETRY. It answered, so this
		// is not a retry towards N_RETRY.
		s.out.inflight[i].deadline = r.now.Add(b.cfg.RetryInterval)
		s.out.inflight[i].retries = 0
		return out
	case packet.InvalidTopicID:
		// The client lost the mapping (6.12): register again and resend, once.
		in := b.completeInflight(s, i)
		if in.msg == nil && len(in.buf) >= in.dupAt+3 && packet.Flags(in.buf[in.dupAt]).TopicIDType() == packet.TopicNormal {
			// A clean session keeps no copy to resend: forget the mapping, so that the
			// next delivery on the topic registers it again.
			b.forgetKnown(s, uint16(in.buf[in.dupAt+1])<<8|uint16(in.buf[in.dupAt+2]))
		}
		if in.msg != nil && !in.msg.reRegistered && in.msg.idType == packet.TopicNormal {
			b.forgetKnown(s, in.msg.topicID)
			m := *in.msg
			m.reRegistered, m.dup, m.msgID = true, false, 0
			s.out.pushFront(&m)
			b.journalMsg(s, &m, 0, 0)
		}
	default:
		b.completeInflight(s, i)
	}
	return b.pump(s, r.now, out)
}

func (b *Broker) handlePubrec(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		b.c.drops[DropNoSession].Add(1)
		return out
	}
	i := s.out.find(r.p.MsgID)
	if i < 0 || s.out.inflight[i].qos != packet.QoS2 {
		b.c.drops[DropUnknownMsgID].Add(1)
		return out
	}
	s.validated = true
	in := &s.out.inflight[i]
	if in.awaiting == packet.PUBREC {
		in.awaiting = packet.PUBCOMP
		in.retries = 0
		if in.msg != nil {
			in.msg.awaiting = packet.PUBCOMP
			b.journalMsg(s, in.msg, in.msgID, packet.PUBCOMP)
		}
	}
	// A duplicate PUBREC means our PUBREL was lost: send it again.
	in.deadline = r.now.Add(b.cfg.RetryInterval)
	return b.sendPubrel(s, in.msgID, in.mark, out)
}

func (b *Broker) handlePubcomp(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		b.c.drops[DropNoSession].Add(1)
		return out
	}
	i := s.out.find(r.p.MsgID)
	if i < 0 || s.out.inflight[i].awaiting != packet.PUBCOMP {
		b.c.drops[DropUnknownMsgID].Add(1)
		return out
	}
	s.validated = true
	b.completeInflight(s, i)
	return b.pump(s, r.now, out)
}

// handlePubrel: the publisher releases a QoS 2 message; PUBCOMP is always sent, also
// for a PUBREL seen before (its PUBCOMP was lost).
func (b *Broker) handlePubrel(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		return b.noSession(r, out)
	}
	if sum, ok := s.qos2In[r.p.MsgID]; ok {
		delete(s.qos2In, r.p.MsgID)
		s.released[s.relNext%uint8(len(s.released))] = releasedQoS2{msgID: r.p.MsgID, sum: sum, at: r.now}
		s.relNext++
		b.dirty(s)
	}

	q := b.reply(packet.PUBCOMP)
	q.MsgID = r.p.MsgID
	return b.emitTo(out, s, r.mark)
}

// Inject publishes a message that did not come from an MQTT-SN client — `$SYS` topics
// from the driver, or messages a bridge received upstream — to the local subscribers,
// exactly as a client's PUBLISH would be. It returns an error for an invalid topic name
// or QoS; the payload is copied where it must outlive the call. Datagrams already in
// out (from Tick, or an earlier Inject) stay valid: several messages can be injected
// into one batch before it is sent.
func (b *Broker) Inject(now time.Time, topicName string, payload []byte, qos int8, retain bool, out []Datagram) ([]Datagram, error) {
	if err := topic.ValidateName(topicName); err != nil {
		return out, err
	}
	if qos < 0 || qos > 2 {
		return out, fmt.Errorf("broker: inject %q: QoS %d must be 0, 1 or 2", topicName, qos)
	}
	if len(out) == 0 {
		// Nothing of the caller's aliases the arena: reuse it. Otherwise append (a
		// reallocation leaves the earlier datagrams on the old array, still valid).
		b.arena = b.arena[:0]
	}
	id, _ := b.topics.lookup(topicName)
	m := message{topic: topicName, topicID: id, data: payload, qos: packet.QoS(qos), retain: retain}
	return b.publish(now, &m, OriginLocal, out), nil
}

// publishSum fingerprints a PUBLISH's topic and payload (FNV-1a), to recognise a stray
// copy of a QoS 2 publication that was already released.
func publishSum(p *packet.Packet) uint64 {
	h := uint64(14695981039346656037)
	h = (h ^ uint64(p.Flags.TopicIDType())) * 1099511628211
	h = (h ^ uint64(p.TopicID>>8)) * 1099511628211
	h = (h ^ uint64(p.TopicID&0xff)) * 1099511628211
	for _, c := range p.Data {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// recentlyReleased reports whether p is a stray copy of a QoS 2 publication released
// within the last T_RETRY: same msg id, same topic and payload. A client that reuses a
// msg id at once for an identical publication loses that one copy — on a link that
// duplicates datagrams the two are indistinguishable, and exactly-once must win.
func (b *Broker) recentlyReleased(s *session, p *packet.Packet, now time.Time) bool {
	for i := range s.released {
		r := &s.released[i]
		if r.msgID == p.MsgID && !r.at.IsZero() && now.Sub(r.at) < b.cfg.RetryInterval && r.sum == publishSum(p) {
			b.c.drops[DropDuplicate].Add(1)
			return true
		}
	}
	return false
}
