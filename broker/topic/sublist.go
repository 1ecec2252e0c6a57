package topic

// entry is a subscription as stored: the subscriber, its QoS, and its dedup slot.
type entry struct {
	sub  SubscriberID
	qos  uint8
	slot uint32
}

// subList holds the subscribers of one filter: a flat slice that matching scans, plus a
// position map once the list is long enough that Add and Remove would otherwise scan.
type subList struct {
	entries []entry
	pos     map[SubscriberID]int32 // nil while len(entries) <= posMin
}

const (
	posMin    = 16 // build pos above this many entries
	shrinkMin = 64 // reallocate a slice with this much capacity once 3/4 of it is unused
)

func (l *subList) find(sub SubscriberID) int {
	if l.pos != nil {
		if i, ok := l.pos[sub]; ok {
			return int(i)
		}
		return -1
	}
	for i := range l.entries {
		if l.entries[i].sub == sub {
			return i
		}
	}
	return -1
}

// add appends e, whose subscriber must not be in l yet.
func (l *subList) add(e entry) {
	l.entries = append(l.entries, e)
	switch n := len(l.entries); {
	case l.pos != nil:
		l.pos[e.sub] = int32(n - 1)
	case n > posMin:
		l.pos = make(map[SubscriberID]int32, n)
		for i, e := range l.entries {
			l.pos[e.sub] = int32(i)
		}
	}
}

// remove takes sub's entry out of l (moving the last entry into its place).
func (l *subList) remove(sub SubscriberID) (entry, bool) {
	i := l.find(sub)
	if i < 0 {
		return entry{}, false
	}
	e := l.entries[i]
	last := len(l.entries) - 1
	if i != last {
		l.entries[i] = l.entries[last]
		if l.pos != nil {
			l.pos[l.entries[i].sub] = int32(i)
		}
	}
	l.entries = l.entries[:last]
	if l.pos != nil {
		delete(l.pos, sub)
		if last <= posMin/2 {
			l.pos = nil // a map never shrinks; scanning is cheap again
		}
	}
	if c := cap(l.entries); c >= shrinkMin && last < c/4 {
		l.entries = append(make([]entry, 0, 2*last), l.entries...)
	} else if last == 0 {
		l.entries = nil
	}
	return e, true
}
