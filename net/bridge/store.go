package bridge

import (
	"strings"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ackStore is paho's memory store, watched so that the bridge learns when the upstream
// really acknowledged a QoS 1/2 publication.
//
// A publish token is not that signal. When paho reconnects it resends the publications
// left in its store under new tokens and completes the old ones with no error, before
// any acknowledgement (paho.mqtt.golang v1.5.1: client.resume calls messageIds.claimID,
// which calls flowComplete on the token it replaces). A bridge that trusted the token
// would drop such a message from its queue and count it forwarded while it is still
// unacknowledged.
//
// paho deletes an outbound PUBLISH (or the PUBREL that replaces it for QoS 2) from its
// store when, and only when, the PUBACK (QoS 1) or PUBCOMP (QoS 2) for it is read, and
// before it completes the token. That deletion is the acknowledgement.
type ackStore struct {
	mqtt.Store

	// snapshot is called when paho has read the store to resend what it holds after a
	// connect (All, from resume) or wiped it (Reset, a clean session): from then on, a new
	// publication is paho's to send once, not also resume's.
	snapshot func()

	mu    sync.Mutex
	next  *pending            // bound to the next outbound PUBLISH put in the store
	byKey map[string]*pending // outbound key "o.<id>" → the publication waiting on it
}

// pending is one publication waiting for its acknowledgement.
type pending struct {
	key   string
	acked chan struct{} // closed when the upstream acknowledged it
	lost  chan struct{} // closed when the store was reset or closed first: publish again
}

func newAckStore(snapshot func()) *ackStore {
	return &ackStore{Store: mqtt.NewMemoryStore(), snapshot: snapshot, byKey: map[string]*pending{}}
}

func (s *ackStore) All() []string {
	keys := s.Store.All()
	s.snapshot()
	return keys
}

// expect returns the watch for the publication about to be handed to paho's Publish:
// Publish stores it (under its message id) before it returns. Only the bridge's Run
// publishes, one at a time, so the next outbound PUBLISH stored is that one.
func (s *ackStore) expect() *pending {
	p := &pending{acked: make(chan struct{}), lost: make(chan struct{})}
	s.mu.Lock()
	s.next = p
	s.mu.Unlock()
	return p
}

// forget stops watching p (given up on, or Run is ending).
func (s *ackStore) forget(p *pending) {
	s.mu.Lock()
	if s.next == p {
		s.next = nil
	}
	if p.key != "" && s.byKey[p.key] == p {
		delete(s.byKey, p.key)
	}
	s.mu.Unlock()
}

func (s *ackStore) Put(key string, m packets.ControlPacket) {
	s.Store.Put(key, m)
	if !strings.HasPrefix(key, "o.") {
		return
	}
	if _, ok := m.(*packets.PublishPacket); !ok {
		return // a PUBREL replacing a QoS 2 PUBLISH keeps it pending; subscriptions are not ours
	}
	s.mu.Lock()
	if p := s.next; p != nil {
		s.next = nil
		p.key = key
		s.byKey[key] = p
	}
	s.mu.Unlock()
}

func (s *ackStore) Del(key string) {
	s.Store.Del(key)
	s.mu.Lock()
	if p := s.byKey[key]; p != nil {
		delete(s.byKey, key)
		close(p.acked)
	}
	s.mu.Unlock()
}

// Reset (a clean-session connect) and Close (a disconnect) drop what the store held:
// what was waiting in it can no longer be acknowledged through it.
func (s *ackStore) Reset() { s.Store.Reset(); s.dropAll(); s.snapshot() }
func (s *ackStore) Close() { s.Store.Close(); s.dropAll() }

func (s *ackStore) dropAll() {
	s.mu.Lock()
	for k, p := range s.byKey {
		delete(s.byKey, k)
		close(p.lost)
	}
	s.mu.Unlock()
}
