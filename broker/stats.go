package broker

import (
	"sync/atomic"

	"github.com/musqratt/musqratt/broker/packet"
)

// Drop is why a received datagram was dropped without an answer.
type Drop uint8

const (
	DropMalformed           Drop = iota // the codec rejected it; see MalformedByReason
	DropUnexpected                      // a well-formed message the broker never expects (e.g. CONNACK)
	DropNoSession                       // needs a session and the sender has none (answered with DISCONNECT)
	DropBadState                        // arrived in a state where it makes no sense (e.g. WILLMSG with no pending CONNECT)
	DropUnknownMsgID                    // an acknowledgement for nothing outstanding
	DropQoSMinus1Normal                 // QoS -1 PUBLISH with a normal topic id (needs pre-defined or short)
	DropQueueFull                       // a delivery to a connected client whose outbox was full that could not wait: QoS 0, a will, an injected message, or queue_full_policy drop
	DropRetainedFull                    // a retained message not stored: MaxRetained reached
	DropRefusedTopic                    // a delivery on a topic the client rejected with REGACK
	DropDenied                          // refused by RequireSameAddress or access control
	DropDuplicate                       // a stray copy of a QoS 2 PUBLISH already released (answered, not delivered)
	DropChallengeUnanswered             // an address challenge (REGISTER) never answered: given up, the client kept
	DropSleepBufferFull                 // a delivery to an asleep client whose buffer (MaxSleepBuffer) was full
	DropOfflineQueueFull                // a QoS 1/2 delivery to a persistent session whose client is away, its queue full
	DropCongestion                      // a held publication refused with PUBACK 0x01 (held too long, or too many held): delivered to no one
	DropHeldResend                      // a resend of a publication being held: ignored, the held one stands
	DropHeldAbandoned                   // a held publication forgotten because its publisher left: never acknowledged
	NumDrops
)

var dropNames = [NumDrops]string{
	"malformed", "unexpected", "no_session", "bad_state", "unknown_msg_id",
	"qos_minus1_normal_topic", "queue_full", "retained_full", "refused_topic", "denied", "duplicate_qos2",
	"challenge_unanswered", "sleep_buffer_full", "offline_queue_full", "congestion", "held_resend",
	"held_abandoned",
}

func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "unknown"
}

// Limit names a configured limit, for Events and counters.
type Limit uint8

const (
	LimitClients Limit = iota
	LimitTopics
	LimitTopicsPerClient
	LimitSubsPerClient
	LimitQueue
	LimitSleepBuffer
	LimitQoS2Incoming
	LimitPayload
	LimitRetained
	LimitHold         // a publication held for back-pressure past MaxHoldTime, or beyond MaxHeldPerClient
	LimitTopicLength  // a topic name or filter longer than MaxTopicLength or deeper than MaxTopicLevels
	LimitSessionBytes // a request that would grow a session's durable record past maxSessionRecord
	LimitClientsPerAddress
	LimitConnecting // CONNECTs with an unfinished will exchange (MaxConnecting)
	NumLimits
)

var limitNames = [NumLimits]string{
	"clients", "topics", "topics_per_client", "subscriptions_per_client", "queue_per_client",
	"sleep_buffer", "qos2_incoming", "payload", "retained", "publish_hold",
	"topic_length", "session_bytes", "clients_per_address", "connecting",
}

func (l Limit) String() string {
	if l < NumLimits {
		return limitNames[l]
	}
	return "unknown"
}

// counters are the engine's monotonically increasing counts. They are atomics so that
// Stats can be read from another goroutine while the one engine goroutine writes them;
// an uncontended atomic add costs about as much as a plain one on the hot path.
type counters struct {
	in, out           [256]atomic.Uint64 // datagrams by message type
	bytesIn, bytesOut atomic.Uint64
	malformed         [packet.NumReasons]atomic.Uint64
	drops             [NumDrops]atomic.Uint64
	limits            [NumLimits]atomic.Uint64
	retransmissions   atomic.Uint64
	publishesIn       atomic.Uint64
	deliveries        atomic.Uint64
	willsPublished    atomic.Uint64
	takeovers         atomic.Uint64
	topicsFreed       atomic.Uint64
	broadcasts        atomic.Uint64
	gauges            gauges
}

type gauges struct {
	clients       [numStates]atomic.Int64
	topics        atomic.Int64
	subscriptions atomic.Int64
	retained      atomic.Int64
	inflight      atomic.Int64
	queued        atomic.Int64
	sleepBuffered atomic.Int64
	held          atomic.Int64
}

// Stats is a value snapshot of the engine's counters and gauges.
type Stats struct {
	InByType, OutByType [256]uint64
	BytesIn, BytesOut   uint64
	MalformedByReason   [packet.NumReasons]uint64
	Drops               [NumDrops]uint64
	LimitsHit           [NumLimits]uint64
	Retransmissions     uint64
	PublishesIn         uint64 // PUBLISH messages accepted from clients (all QoS, duplicates excluded)
	Deliveries          uint64 // PUBLISH messages sent to subscribers (first transmissions)
	WillsPublished      uint64
	Takeovers           uint64
	Broadcasts          uint64
	TopicsFreed         uint64 // topic ids freed because nothing referenced them any more

	ClientsByState [numStates]int64 // indexed by State
	Topics         int64            // registered topic names
	Subscriptions  int64
	Retained       int64
	Inflight       int64 // QoS 1/2 deliveries awaiting acknowledgement
	Queued         int64 // deliveries queued behind the inflight window
	SleepBuffered  int64 // messages held for asleep clients
	Held           int64 // client publications held, unacknowledged, until their subscribers have room
}

// Stats returns a snapshot. It is safe to call from any goroutine.
func (b *Broker) Stats() Stats {
	c := &b.c
	var s Stats
	for i := range c.in {
		s.InByType[i] = c.in[i].Load()
		s.OutByType[i] = c.out[i].Load()
	}
	s.BytesIn, s.BytesOut = c.bytesIn.Load(), c.bytesOut.Load()
	for i := range c.malformed {
		s.MalformedByReason[i] = c.malformed[i].Load()
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	for i := range c.limits {
		s.LimitsHit[i] = c.limits[i].Load()
	}
	s.Retransmissions = c.retransmissions.Load()
	s.PublishesIn = c.publishesIn.Load()
	s.Deliveries = c.deliveries.Load()
	s.WillsPublished = c.willsPublished.Load()
	s.Takeovers = c.takeovers.Load()
	s.TopicsFreed = c.topicsFreed.Load()
	s.Broadcasts = c.broadcasts.Load()
	g := &c.gauges
	for i := range g.clients {
		s.ClientsByState[i] = g.clients[i].Load()
	}
	s.Topics, s.Subscriptions, s.Retained = g.topics.Load(), g.subscriptions.Load(), g.retained.Load()
	s.Inflight, s.Queued, s.SleepBuffered = g.inflight.Load(), g.queued.Load(), g.sleepBuffered.Load()
	s.Held = g.held.Load()
	return s
}

// TotalDrops sums every dropped datagram, malformed ones included.
func (s *Stats) TotalDrops() uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}
