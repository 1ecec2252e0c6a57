package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/musqratt/musqratt/broker/packet"
)

// DurableState describes, one fact per line, the state docs/durability.md promises
// survives a restart: retained messages; per persistent session its client id, whether
// it is asleep (and for how long it sleeps), its keep-alive, subscriptions with their
// QoS, the topic ids its client was told (with their names), its will, the QoS 2
// message ids received and not released, and the QoS 1/2 deliveries owed to it in
// order, each with its message id and handshake position once sent.
//
// Left out, as the docs leave them out: clean sessions; QoS 0 deliveries; held
// publications (never acknowledged); whether a client is connected (a restart
// disconnects everyone: active, lost and disconnected are all "away"); timers; the
// message id counter (a new address starts it afresh); the ids a client refused and
// the QoS 2 publications recently released (both only spare a round trip); topic ids
// no persistent session was told; and the retained messages a new subscription still
// owes but has not queued yet (the outbox's backlog: see "What is not durable").
//
// A persistent session that holds nothing and is not asleep is left out too: its
// client was never acknowledged anything a restart could lose (a CONNECT whose will
// exchange was abandoned leaves one behind), and one that comes back empty is the same
// as none.
//
// Two brokers whose DurableState is equal serve every client the same after a restart.
func DurableState(b *Broker) []string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	names := make([]string, 0, len(b.retained))
	for name := range b.retained {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rm := b.retained[name]
		add("retained %q qos %d %q", name, rm.qos, rm.data)
	}
	var sessions []*session
	for _, s := range b.sessions {
		if s != nil && s.live && !s.clean && !durablyEmpty(s) {
			sessions = append(sessions, s)
		}
	}
	slices.SortFunc(sessions, func(x, y *session) int { return strings.Compare(x.clientID, y.clientID) })
	for _, s := range sessions {
		c := s.clientID
		if s.state == StateAsleep || s.state == StateAwake {
			add("session %q asleep for %v", c, s.sleepFor)
		} else {
			add("session %q away", c)
		}
		add("session %q keep-alive %v", c, s.keepAlive)
		filters := make([]string, 0, len(s.filters))
		for f := range s.filters {
			filters = append(filters, f)
		}
		slices.Sort(filters)
		for _, f := range filters {
			add("session %q subscription %q qos %d", c, f, s.filters[f])
		}
		known := make([]uint16, 0, len(s.known))
		for id := range s.known {
			known = append(known, id)
		}
		slices.Sort(known)
		for _, id := range known {
			name, _ := b.topics.name(id)
			add("session %q topic id %d %q", c, id, name)
		}
		if w := s.will; w.set || w.topic != "" || len(w.msg) > 0 {
			add("session %q will set %v %q %q qos %d retain %v", c, w.set, w.topic, w.msg, w.qos, w.retain)
		}
		ids := make([]uint16, 0, len(s.qos2In))
		for id := range s.qos2In {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			add("session %q qos2 received id %d sum %016x", c, id, s.qos2In[id])
		}
		for i, o := range owed(s) {
			add("session %q owed %d: %s", c, i, o)
		}
	}
	return lines
}

// owed lists the QoS 1/2 deliveries owed to s, in the order a returning client gets
// them: what is in flight (requeued first on resume), then the queue.
func owed(s *session) []string {
	var o []string
	desc := func(m *message, q packet.QoS, msgID uint16, awaiting packet.Type) string {
		sent := "not sent"
		if msgID != 0 {
			sent = fmt.Sprintf("id %d awaiting %v", msgID, awaiting)
		}
		return fmt.Sprintf("%q qos %d retain %v %q %s", m.topic, q, m.retain, m.data, sent)
	}
	for i := range s.out.inflight {
		if in := &s.out.inflight[i]; in.msg != nil && in.qos > packet.QoS0 {
			o = append(o, desc(in.msg, in.qos, in.msgID, in.awaiting)) // in.qos: as sent
		}
	}
	for _, m := range s.out.queue {
		if m.qos > packet.QoS0 {
			id := uint16(0)
			if m.dup {
				id = m.msgID
			}
			o = append(o, desc(m, m.qos, id, m.awaiting))
		}
	}
	return o
}

// durablyEmpty reports whether a persistent session holds nothing a restart keeps.
func durablyEmpty(s *session) bool {
	return s.state != StateAsleep && s.state != StateAwake && len(s.filters) == 0 && len(s.known) == 0 &&
		!s.will.set && s.will.topic == "" && len(s.will.msg) == 0 && len(s.qos2In) == 0 && len(owed(s)) == 0
}

// DiffLines returns a readable line diff of want and got ("-" only in want, "+" only
// in got, unchanged lines as context), or "" if they are equal.
func DiffLines(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	// Longest common subsequence; the states compared are small.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			sb.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("- " + want[i] + "\n")
			i++
		default:
			sb.WriteString("+ " + got[j] + "\n")
			j++
		}
	}
	return sb.String()
}
