package broker

import (
	"container/heap"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// connectPhase tracks the will exchange of a CONNECT with the Will flag (6.3).
type connectPhase uint8

const (
	phaseNone connectPhase = iota
	phaseWillTopic
	phaseWillMsg
)

type will struct {
	set    bool
	topic  string
	msg    []byte
	qos    packet.QoS
	retain bool
}

// session is one client's state, kept across connections when CleanSession is 0.
type session struct {
	sid      topic.SubscriberID
	clientID string
	peer     peer
	bound    bool // peer is registered in Broker.byPeer
	live     bool // false once deleted
	state    State
	clean    bool
	phase    connectPhase

	keepAlive  time.Duration
	sleepFor   time.Duration
	lastHeard  time.Time
	sleepUntil time.Time
	phaseUntil time.Time // when an unfinished will exchange is abandoned

	will        will
	pendingWill will // being built by WILLTOPIC/WILLMSG during CONNECT

	known   map[uint16]struct{} // normal topic ids this client has been told (REGISTER/REGACK/SUBACK)
	refused map[uint16]struct{} // topic ids the client refused with REGACK
	filters map[string]uint8    // subscription filter → granted QoS (addFilter, removeFilter)
	// filterOctets is what filters adds to the session record (limits.go).
	filterOctets int

	out      outbox // queue, in-flight window, message ids (outbox.go)
	reg      *pendingRegister
	qos2In   map[uint16]uint64 // QoS 2 PUBLISH msg ids received and not yet released → publishSum
	released [8]releasedQoS2   // recently released QoS 2 publications (see handlePubrel)
	relNext  uint8

	// Back-pressure (hold.go): this client's publications held until every matching
	// outbox has room, and the release pass that last found one of them blocked.
	held     int
	heldPass uint32

	// Amplification budget (amplification.go): until the client at peer proves it
	// receives, the broker sends it at most MaxAmplification × rxBytes.
	validated        bool
	rxBytes, txBytes uint64

	dirty     bool // metadata changed this call (persistence)
	persisted bool // a Session record for it is in the journal

	due     time.Time // when runTimers next has work; meaningful while heapIdx >= 0
	heapIdx int
}

// releasedQoS2 remembers a QoS 2 publication after its PUBREL: on a link that
// duplicates datagrams, a copy of the original PUBLISH can arrive after the exchange
// ended, and without this it would be delivered a second time.
type releasedQoS2 struct {
	msgID uint16
	sum   uint64 // FNV-1a of topic id and payload
	at    time.Time
}

type pendingRegister struct {
	msgID    uint16
	topicID  uint16
	name     string // the name sent: the id may be freed and reused before the REGACK
	retries  int
	deadline time.Time
	// challenge: sent only to prove the address (amplification.go), for a topic the
	// client may know already. Unanswered, it is given up, not the client.
	challenge bool
}

func (s *session) connected() bool {
	return s.phase == phaseNone && (s.state == StateActive || s.state == StateAwake)
}

func (s *session) newMsgID() uint16 { return s.out.newMsgID() }

// audience classifies s for the back-pressure rule (outbox.admit).
func (s *session) audience() audience {
	switch {
	case s.connected():
		return audConnected
	case s.state == StateAsleep:
		return audAsleep
	case !s.clean:
		return audOffline
	}
	return audGone
}

// newSession allocates a session slot for clientID.
func (b *Broker) newSession(clientID string) *session {
	s := &session{clientID: clientID, live: true, heapIdx: -1, state: StateDisconnected}
	s.out.g = &b.c.gauges
	if n := len(b.freeIDs); n > 0 {
		s.sid = b.freeIDs[n-1]
		b.freeIDs = b.freeIDs[:n-1]
		b.sessions[s.sid] = s
	} else {
		s.sid = topic.SubscriberID(len(b.sessions))
		b.sessions = append(b.sessions, s)
	}
	b.byClientID[clientID] = s
	b.live++
	b.c.gauges.clients[s.state].Add(1)
	return s
}

func (b *Broker) setState(s *session, st State) {
	if s.state == st {
		return
	}
	b.c.gauges.clients[s.state].Add(-1)
	b.c.gauges.clients[st].Add(1)
	s.state = st
}

func (b *Broker) bind(s *session, to peer) {
	if !s.bound || s.peer.key() != to.key() {
		// A new address must prove itself again; and the message ids it would have
		// to acknowledge start somewhere it cannot guess.
		s.validated, s.rxBytes, s.txBytes = false, 0, 0
		s.out.nextID = uint16(b.random())
	}
	b.unbind(s)
	s.peer = to
	s.bound = true
	b.byPeer[to.key()] = s
	b.perAddr[to.addr.Addr().Unmap()]++
}

func (b *Broker) unbind(s *session) {
	if s.bound {
		if b.byPeer[s.peer.key()] == s {
			delete(b.byPeer, s.peer.key())
		}
		ip := s.peer.addr.Addr().Unmap()
		if b.perAddr[ip]--; b.perAddr[ip] <= 0 {
			delete(b.perAddr, ip)
		}
		s.bound = false
	}
}

// setPhase moves s through the will exchange, counting the sessions in one.
func (b *Broker) setPhase(s *session, ph connectPhase) {
	switch {
	case s.phase == phaseNone && ph != phaseNone:
		b.connecting++
	case s.phase != phaseNone && ph == phaseNone:
		b.connecting--
	}
	s.phase = ph
}

// wipe forgets everything a clean session must not keep: subscriptions,
// registrations, queued and inflight deliveries, QoS 2 state and the will.
func (b *Broker) wipe(s *session) {
	b.clearFilters(s)
	b.clearKnown(s)
	s.out.reset()
	s.reg = nil
	s.qos2In = nil
	s.will = will{}
	s.pendingWill = will{}
}

// deleteSession removes s entirely.
func (b *Broker) deleteSession(s *session) {
	if !s.live {
		return
	}
	b.journalSessionDel(s)
	b.setPhase(s, phaseNone)
	b.dropHeld(s)
	b.heldWake = true
	b.wipe(s)
	b.unbind(s)
	if b.byClientID[s.clientID] == s {
		delete(b.byClientID, s.clientID)
	}
	if s.heapIdx >= 0 {
		heap.Remove(&b.timers, s.heapIdx)
	}
	b.c.gauges.clients[s.state].Add(-1)
	b.sessions[s.sid] = nil
	b.freeIDs = append(b.freeIDs, s.sid)
	b.live--
	s.live = false
}

// lose handles a client that stopped answering (keep-alive, sleep timer, retries): its
// will is published and a clean session ends; a persistent one keeps its state for
// the client's return, with unacknowledged deliveries requeued to be resent.
func (b *Broker) lose(s *session, now time.Time, out []Datagram) []Datagram {
	b.event(Event{Kind: EventDisconnect, ClientID: s.clientID, Addr: s.peer.addr, State: StateLost, Detail: "lost"})
	b.dropHeld(s)
	b.heldWake = true // a subscriber gone: publishers waiting for it may go on
	out = b.publishWill(s, now, out)
	if s.clean {
		b.deleteSession(s)
		return out
	}
	b.requeueInflight(s)
	s.reg = nil
	b.setPhase(s, phaseNone)
	b.unbind(s)
	b.setState(s, StateLost)
	b.dirty(s)
	return out
}

// requeueInflight moves unacknowledged deliveries back to the head of the queue so a
// resumed session gets them again (with DUP set, as they may have arrived).
func (b *Broker) requeueInflight(s *session) { s.out.requeue() }

func (b *Broker) publishWill(s *session, now time.Time, out []Datagram) []Datagram {
	if !s.will.set || s.will.topic == "" {
		return out
	}
	w := s.will
	b.c.willsPublished.Add(1)
	b.event(Event{Kind: EventWill, ClientID: s.clientID, Detail: w.topic})
	id, _ := b.topics.lookup(w.topic)
	return b.publish(now, &message{topic: w.topic, topicID: id, data: w.msg, qos: w.qos, retain: w.retain}, OriginWill, out)
}

// schedule puts s in the timer heap at its next due time. The heap is lazy: a session
// whose due time only moved later (the common case: a message refreshed its
// keep-alive) is left where it is and rescheduled when it surfaces.
func (b *Broker) schedule(s *session) {
	due := s.nextDue(b.cfg)
	switch {
	case due.IsZero():
		if s.heapIdx >= 0 {
			heap.Remove(&b.timers, s.heapIdx)
		}
	case s.heapIdx < 0:
		s.due = due
		heap.Push(&b.timers, s)
	case due.Before(s.due):
		s.due = due
		heap.Fix(&b.timers, s.heapIdx)
	}
}

func (b *Broker) scheduleIfLive(s *session) {
	if s.live {
		b.schedule(s)
	}
}

// nextDue is the earliest of the session's timers.
func (s *session) nextDue(cfg Config) time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if s.phase != phaseNone {
		min(s.phaseUntil)
	}
	switch s.state {
	case StateActive, StateAwake:
		if s.keepAlive > 0 {
			min(s.lastHeard.Add(grace(s.keepAlive)))
		}
		for i := range s.out.inflight {
			min(s.out.inflight[i].deadline)
		}
		if s.reg != nil {
			min(s.reg.deadline)
		}
		if s.state == StateAwake {
			min(s.sleepUntil)
		}
	case StateAsleep:
		min(s.sleepUntil)
	}
	return d
}

// sessionHeap orders sessions by due time (container/heap).
type sessionHeap []*session

func (h sessionHeap) Len() int           { return len(h) }
func (h sessionHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h sessionHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *sessionHeap) Push(x any) {
	s := x.(*session)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}
func (h *sessionHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.heapIdx = -1
	return s
}
