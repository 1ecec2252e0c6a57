package topic

import (
	"slices"
	"strings"
)

// refMatch is the naive reference for Match: split both into levels and compare them one
// by one. It is written from the MQTT 3.1.1 text (4.7), not from Match, and expects a
// valid filter and name.
func refMatch(filter, name string) bool {
	if strings.HasPrefix(name, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f, n := strings.Split(filter, "/"), strings.Split(name, "/")
	for i, fl := range f {
		if fl == "#" {
			return true // the rest of the name, including no level at all
		}
		if i >= len(n) || (fl != "+" && fl != n[i]) {
			return false
		}
	}
	return len(f) == len(n)
}

// refIndex is the naive reference for Index: every subscription in a map, matched by
// scanning all of them.
type refIndex map[string]map[SubscriberID]uint8

func (r refIndex) add(filter string, sub SubscriberID, qos uint8) bool {
	m := r[filter]
	if m == nil {
		m = make(map[SubscriberID]uint8)
		r[filter] = m
	}
	_, had := m[sub]
	m[sub] = qos
	return !had
}

func (r refIndex) remove(filter string, sub SubscriberID) bool {
	m := r[filter]
	if _, ok := m[sub]; !ok {
		return false
	}
	delete(m, sub)
	if len(m) == 0 {
		delete(r, filter)
	}
	return true
}

func (r refIndex) len() int {
	n := 0
	for _, m := range r {
		n += len(m)
	}
	return n
}

// match returns the deduplicated entries for name, highest QoS per subscriber, sorted.
func (r refIndex) match(name string) []Entry {
	best := make(map[SubscriberID]uint8)
	for f, m := range r {
		if !refMatch(f, name) {
			continue
		}
		for sub, q := range m {
			if old, ok := best[sub]; !ok || q > old {
				best[sub] = q
			}
		}
	}
	out := make([]Entry, 0, len(best))
	for sub, q := range best {
		out = append(out, Entry{Sub: sub, QoS: q})
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return int(a.Sub) - int(b.Sub) })
}
