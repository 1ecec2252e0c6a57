package kernel

import (
	"context"
	"sync"
)

// Upstream is a bridge from this broker to another (an MQTT broker or cluster: see
// net/bridge and docs/scaling.md). It runs beside the engine, never in its publish
// path: the engine hands it local publications without waiting, and it hands
// messages from upstream back through a bounded queue the engine drains on its own
// goroutine.
type Upstream interface {
	// Run connects upstream and keeps the connection until ctx ends. deliver queues a
	// message from upstream for the local subscribers; it is safe from any goroutine,
	// never blocks, and returns false when the queue is full (the message is not
	// queued: the bridge decides whether to retry or count it dropped).
	Run(ctx context.Context, deliver func(topic string, payload []byte, qos int8, retain bool) bool) error
	// Forward is called on the engine goroutine for every publication by a local
	// client (and every will), never for what came from upstream (no loops). It must
	// not block, and must copy payload to keep it.
	Forward(topic string, payload []byte, qos int8, retain bool)
}

// DefaultUpstreamQueue bounds the messages from upstream waiting for the engine.
const DefaultUpstreamQueue = 4096

// inboundQueue holds messages from upstream until the engine goroutine injects them.
type inboundQueue struct {
	mu      sync.Mutex
	pending []inboundMsg
	spare   []inboundMsg
	max     int
	wake    func()
}

type inboundMsg struct {
	topic   string
	payload []byte
	qos     int8
	retain  bool
}

// deliver is Upstream.Run's deliver.
func (q *inboundQueue) deliver(topic string, payload []byte, qos int8, retain bool) bool {
	q.mu.Lock()
	if len(q.pending) >= q.max {
		q.mu.Unlock()
		return false
	}
	first := len(q.pending) == 0
	q.pending = append(q.pending, inboundMsg{topic, append([]byte(nil), payload...), qos, retain})
	q.mu.Unlock()
	if first {
		q.wake() // later ones ride on the same wake-up
	}
	return true
}

// take returns the pending messages; the caller hands the slice back with give.
func (q *inboundQueue) take() []inboundMsg {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	batch := q.pending
	q.pending = q.spare[:0]
	q.spare = nil
	return batch
}

func (q *inboundQueue) give(batch []inboundMsg) {
	clear(batch)
	q.mu.Lock()
	q.spare = batch[:0]
	q.mu.Unlock()
}
