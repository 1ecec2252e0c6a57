package broker

import (
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// outbox is one session's outgoing side: the deliveries waiting to be sent (queue), the
// QoS 1/2 deliveries sent and awaiting acknowledgement (in flight), the message ids
// they carry, the retained messages a new subscription still owes the client (backlog),
// and the engine gauges that count them. Every change to these goes through its
// methods, so its invariants hold by construction:
//
//   - the queued, in-flight and sleep-buffered gauges move with the contents, one for
//     one (each outbox adds exactly what it holds to the engine-wide sums);
//   - message ids in flight are unique and never 0 (newMsgID skips ids in use);
//   - admit is the one back-pressure rule: whether a delivery is sent, queued, pushes
//     back on its publisher, or is dropped (and why).
//
// Callers may read the queue and in-flight slices and update an in-flight entry's
// timers (retries, deadline, awaiting) in place; they never add or remove entries
// except through these methods.
type outbox struct {
	queue    []*message // deliveries waiting for the window, a registration, or a wake-up
	inflight []inflight // QoS 1/2 deliveries awaiting acknowledgement (≤ InflightWindow)
	nextID   uint16     // the last message id handed out
	backlog  []retainedRef
	// blocked: admit refused a publication for want of room here, so a publisher
	// waits; the broker is told (freed) when room appears.
	blocked bool
	g       *gauges
}

// retainedRef is a retained message a subscription still owes its client, fed into the
// queue as room frees (pacing, not dropping).
type retainedRef struct {
	name    string
	granted packet.QoS
}

type inflight struct {
	msgID    uint16
	qos      packet.QoS
	awaiting packet.Type // PUBACK, PUBREC or PUBCOMP
	msg      *message    // kept to requeue on resume; nil once owned bytes are not needed
	buf      []byte      // the encoded PUBLISH, resent with DUP
	dupAt    int         // offset of the flags octet in buf
	retries  int
	deadline time.Time
	mark     uint64
}

func (o *outbox) queued() int   { return len(o.queue) }
func (o *outbox) inFlight() int { return len(o.inflight) }

// idle reports whether nothing is queued or in flight.
func (o *outbox) idle() bool { return len(o.queue) == 0 && len(o.inflight) == 0 }

// windowFull reports whether a QoS 1/2 delivery must wait for an acknowledgement.
func (o *outbox) windowFull(window int) bool { return len(o.inflight) >= window }

// head returns the first queued delivery, or nil.
func (o *outbox) head() *message {
	if len(o.queue) == 0 {
		return nil
	}
	return o.queue[0]
}

// push queues m at the tail.
func (o *outbox) push(m *message) {
	o.queue = append(o.queue, m)
	o.counted(m, 1)
}

// pushFront queues m at the head (a delivery to be sent again first).
func (o *outbox) pushFront(m *message) {
	o.queue = append(o.queue, nil)
	copy(o.queue[1:], o.queue)
	o.queue[0] = m
	o.counted(m, 1)
}

// pop removes and returns the head of the queue (which must not be empty).
func (o *outbox) pop() *message {
	m := o.queue[0]
	copy(o.queue, o.queue[1:])
	o.queue[len(o.queue)-1] = nil
	o.queue = o.queue[:len(o.queue)-1]
	o.counted(m, -1)
	return m
}

// dropWhere removes every queued delivery for which drop returns true, calling gone for
// each, and keeps the others in order.
func (o *outbox) dropWhere(drop func(*message) bool, gone func(*message)) {
	kept := o.queue[:0]
	for _, m := range o.queue {
		if drop(m) {
			o.counted(m, -1)
			if gone != nil {
				gone(m)
			}
			continue
		}
		kept = append(kept, m)
	}
	clear(o.queue[len(kept):])
	o.queue = kept
}

// counted moves the gauges for m entering (+1) or leaving (-1) the queue. A message
// leaving the sleep buffer loses its mark, so a copy requeued later does not count
// again.
func (o *outbox) counted(m *message, d int64) {
	o.g.queued.Add(d)
	if m.sleepBuffered {
		o.g.sleepBuffered.Add(d)
		if d < 0 {
			m.sleepBuffered = false
		}
	}
}

// newMsgID returns the next message id: never 0, never one in flight.
func (o *outbox) newMsgID() uint16 {
	for {
		o.nextID++
		if o.nextID == 0 {
			o.nextID = 1
		}
		if o.find(o.nextID) < 0 {
			return o.nextID
		}
	}
}

// find returns the index of the in-flight delivery with msgID, or -1.
func (o *outbox) find(msgID uint16) int {
	for i := range o.inflight {
		if o.inflight[i].msgID == msgID {
			return i
		}
	}
	return -1
}

// addInflight appends an in-flight slot, reusing the buffer a completed one left, and
// returns it for the caller to fill (its buf is the reusable buffer, emptied).
func (o *outbox) addInflight() *inflight {
	if len(o.inflight) < cap(o.inflight) {
		o.inflight = o.inflight[:len(o.inflight)+1]
	} else {
		o.inflight = append(o.inflight, inflight{})
	}
	in := &o.inflight[len(o.inflight)-1]
	buf := in.buf[:0]
	*in = inflight{buf: buf}
	o.g.inflight.Add(1)
	return in
}

// complete removes in-flight entry i and returns it; its buffer stays for reuse (the
// returned copy's buf must not be kept).
func (o *outbox) complete(i int) inflight {
	in := o.inflight[i]
	last := len(o.inflight) - 1
	o.inflight[i] = o.inflight[last]
	o.inflight[last] = inflight{buf: in.buf[:0]}
	o.inflight = o.inflight[:last]
	o.g.inflight.Add(-1)
	return in
}

// requeue moves what is in flight back to the head of the queue, to be resent with DUP
// (keeping message id and handshake position) when the client returns. Entries without
// a kept message (a clean session's) are forgotten.
func (o *outbox) requeue() {
	if len(o.inflight) == 0 {
		return
	}
	back := make([]*message, 0, len(o.inflight)+len(o.queue))
	for i := range o.inflight {
		in := &o.inflight[i]
		if in.msg != nil {
			m := *in.msg
			m.dup = true
			m.msgID = in.msgID
			m.awaiting = in.awaiting
			back = append(back, &m)
			o.counted(&m, 1)
		}
	}
	o.g.inflight.Add(-int64(len(o.inflight)))
	for i := range o.inflight {
		o.inflight[i] = inflight{buf: o.inflight[i].buf[:0]}
	}
	o.inflight = o.inflight[:0]
	o.queue = append(back, o.queue...)
}

// reset forgets everything: queue, in flight, backlog.
func (o *outbox) reset() {
	o.dropWhere(func(*message) bool { return true }, nil)
	o.g.inflight.Add(-int64(len(o.inflight)))
	o.inflight = o.inflight[:0]
	o.backlog = nil
	o.blocked = false
}

// addBacklog owes the client the retained messages named (in order) at granted QoS.
func (o *outbox) addBacklog(names []string, granted packet.QoS) {
	for _, n := range names {
		o.backlog = append(o.backlog, retainedRef{name: n, granted: granted})
	}
}

// nextBacklog takes the first owed retained message, if any.
func (o *outbox) nextBacklog() (retainedRef, bool) {
	if len(o.backlog) == 0 {
		return retainedRef{}, false
	}
	r := o.backlog[0]
	o.backlog[0] = retainedRef{}
	o.backlog = o.backlog[1:]
	if len(o.backlog) == 0 {
		o.backlog = nil
	}
	return r, true
}

// freed reports, once, that an outbox a publisher waits on has room again.
func (o *outbox) freed(limit int) bool {
	if o.blocked && len(o.queue) < limit {
		o.blocked = false
		return true
	}
	return false
}

// audience is what kind of subscriber an outbox belongs to, for the back-pressure rule.
type audience uint8

const (
	audConnected audience = iota // active or awake: it drains, so a publisher may wait for it
	audAsleep                    // asleep: a bounded store (MaxSleepBuffer), never waited for
	audOffline                   // a persistent session whose client is away: bounded store
	audGone                      // a clean session whose client is away: gets nothing
)

// verdict is the back-pressure rule's answer for one delivery.
type verdict uint8

const (
	verdictQueue verdict = iota // room: queue it (or send it at once)
	verdictBlock                // full, and the publisher can wait: hold its acknowledgement
	verdictDrop                 // full, or not kept: dropped for this subscriber (Drop says why)
)

// admitting is what the rule needs to know about the delivery and the limits.
type admitting struct {
	qos      packet.QoS // the delivery's QoS (after the granted QoS)
	canWait  bool       // the publication can push back (a client's QoS 1/2 PUBLISH under PolicyBlock)
	queueMax int        // MaxQueuedPerClient
	sleepMax int        // MaxSleepBuffer
}

// admit is the back-pressure rule (docs/reliability.md, "Back-pressure"): whether one
// more delivery to this outbox is queued, makes its publisher wait, or is dropped.
//
//   - a connected subscriber with room queues; full, a QoS 1/2 delivery from a
//     publisher that can wait blocks; anything else (QoS 0, wills, injected
//     messages, PolicyDrop) is dropped as queue_full;
//   - an asleep subscriber queues up to MaxSleepBuffer, then drops (sleep_buffer_full);
//   - an offline persistent session queues QoS 1/2 up to MaxQueuedPerClient, then drops
//     (offline_queue_full); its QoS 0 is not kept;
//   - a clean session whose client is away gets nothing.
//
// A dropped reason of NumDrops means "not kept, not counted" (a clean session away,
// QoS 0 for an offline one: nothing was ever promised).
func (o *outbox) admit(aud audience, a admitting) (verdict, Drop) {
	n := len(o.queue)
	switch aud {
	case audConnected:
		if n < a.queueMax {
			return verdictQueue, NumDrops
		}
		if a.canWait && a.qos > packet.QoS0 {
			return verdictBlock, NumDrops
		}
		return verdictDrop, DropQueueFull
	case audAsleep:
		if n < a.sleepMax {
			return verdictQueue, NumDrops
		}
		return verdictDrop, DropSleepBufferFull
	case audOffline:
		if a.qos == packet.QoS0 {
			return verdictDrop, NumDrops
		}
		if n < a.queueMax {
			return verdictQueue, NumDrops
		}
		return verdictDrop, DropOfflineQueueFull
	}
	return verdictDrop, NumDrops
}
