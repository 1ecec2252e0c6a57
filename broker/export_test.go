package broker

import "fmt"

// CheckTopicRefs verifies the topic table's bookkeeping against the state it counts:
// every id's references are the sessions that know or refused it plus a retained
// message on its name; nothing freed is still named; the gauges agree.
func CheckTopicRefs(b *Broker) error {
	t := &b.topics
	want := make([]int32, len(t.names))
	for _, s := range b.sessions {
		if s == nil {
			continue
		}
		for id := range s.known {
			if !t.is(id, t.names[id]) || t.names[id] == "" {
				return fmt.Errorf("client %s knows free id %d", s.clientID, id)
			}
			want[id]++
		}
		for id := range s.refused {
			want[id]++
		}
	}
	for name := range b.retained {
		if id, ok := t.byName[name]; ok {
			want[id]++
		}
	}
	n, unref := 0, 0
	for id := 1; id < len(t.names); id++ {
		name := t.names[id]
		if name == "" {
			if want[id] != 0 {
				return fmt.Errorf("free id %d has %d references", id, want[id])
			}
			continue
		}
		n++
		if t.byName[name] != uint16(id) {
			return fmt.Errorf("id %d names %q, which maps to %d", id, name, t.byName[name])
		}
		if t.refs[id] != want[id] {
			return fmt.Errorf("id %d (%q): %d references counted, %d held", id, name, t.refs[id], want[id])
		}
		if want[id] == 0 {
			unref++
		}
	}
	switch {
	case n != t.n || len(t.byName) != n:
		return fmt.Errorf("%d ids named, %d counted, %d names mapped", n, t.n, len(t.byName))
	case unref > t.unref:
		return fmt.Errorf("%d unreferenced ids, %d counted", unref, t.unref)
	case b.c.gauges.topics.Load() != int64(n):
		return fmt.Errorf("topics gauge %d, %d ids assigned", b.c.gauges.topics.Load(), n)
	}
	return nil
}

// SetMaxSessionRecord lowers the session-record bound for a test; the returned
// function restores it.
func SetMaxSessionRecord(n int) func() {
	old := maxSessionRecord
	maxSessionRecord = n
	return func() { maxSessionRecord = old }
}

// SessionRecordReserve is the room recordRoom keeps for registrations and QoS 2
// receipts of a session that has none.
func SessionRecordReserve(cfg Config) int {
	return knownEntryLen*65534 + qos2EntryLen*cfg.withDefaults().MaxQoS2Incoming
}
