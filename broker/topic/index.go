package topic

import "strings"

// SubscriberID names a subscriber (a session) to the Index. The broker chooses the values.
type SubscriberID uint32

// Entry is one subscriber that a topic name is delivered to, with the QoS it was granted.
type Entry struct {
	Sub SubscriberID
	QoS uint8
}

// Index maps topic filters to subscribers. Exact filters (no wildcard) sit in one map
// keyed by the whole filter, so a name costs one lookup there; filters with wildcards sit
// in a trie by level, which is walked only while it holds any. Nodes left empty by Remove
// are pruned, so memory follows the live subscriptions.
//
// Index is not safe for concurrent use.
type Index struct {
	exact map[string]*subList // filters without wildcards
	root  node                // filters with wildcards
	wild  int                 // (filter, sub) pairs in the trie
	n     int                 // (filter, sub) pairs in all

	// Deduplication in MatchAppend: every subscriber holds a dense slot while it has
	// subscriptions; seen[slot] says in which MatchAppend call (gen) it was last appended,
	// and where in dst.
	subs map[SubscriberID]subRef
	seen []seenAt
	free []uint32
	gen  uint32
}

type subRef struct {
	slot  uint32
	count uint32 // filters held in the index
}

type seenAt struct {
	gen uint32
	at  int32
}

// node is a trie level. Only filters containing a wildcard are stored in the trie.
type node struct {
	parent *node
	key    string           // this node's level under parent ("+" for parent.plus)
	exact  map[string]*node // children by literal level; nil when none
	plus   *node            // child for a '+' level
	subs   subList          // filters ending at this node
	hash   subList          // filters ending at this node's "/#" (or "#" at the root)
}

func (n *node) empty() bool {
	return len(n.exact) == 0 && n.plus == nil && len(n.subs.entries) == 0 && len(n.hash.entries) == 0
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{
		exact: make(map[string]*subList),
		subs:  make(map[SubscriberID]subRef),
	}
}

// Len returns the number of (filter, subscriber) pairs in the index.
func (x *Index) Len() int { return x.n }

// Add subscribes sub to filter with the given QoS and reports whether the pair is new.
// If sub already holds filter, its QoS is replaced and Add returns false.
//
// filter must be valid (ValidateFilter): Add ignores a filter that is not, and returns
// false, so validate first to answer the client.
func (x *Index) Add(filter string, sub SubscriberID, qos uint8) (added bool) {
	if ValidateFilter(filter) != nil {
		return false
	}
	var l *subList
	wild := IsWildcard(filter)
	if wild {
		_, l = x.insert(filter)
	} else if l = x.exact[filter]; l == nil {
		l = new(subList)
		x.exact[strings.Clone(filter)] = l
	}
	if i := l.find(sub); i >= 0 {
		l.entries[i].qos = qos
		return false
	}
	l.add(entry{sub: sub, qos: qos, slot: x.acquire(sub)})
	x.n++
	if wild {
		x.wild++
	}
	return true
}

// Remove unsubscribes sub from filter and reports whether it was subscribed.
func (x *Index) Remove(filter string, sub SubscriberID) (removed bool) {
	if !IsWildcard(filter) {
		l := x.exact[filter]
		if l == nil {
			return false
		}
		e, ok := l.remove(sub)
		if !ok {
			return false
		}
		if len(l.entries) == 0 {
			delete(x.exact, filter)
		}
		x.release(e)
		x.n--
		return true
	}
	n, l := x.lookup(filter)
	if l == nil {
		return false
	}
	e, ok := l.remove(sub)
	if !ok {
		return false
	}
	x.release(e)
	x.n--
	x.wild--
	x.prune(n)
	return true
}

// RemoveAll unsubscribes sub from each of filters (those it holds; others are ignored).
func (x *Index) RemoveAll(sub SubscriberID, filters []string) {
	for _, f := range filters {
		x.Remove(f, sub)
	}
}

// MatchAppend appends to dst every subscriber with a filter that matches the topic name,
// once per subscriber, with the highest QoS among its matching filters, and returns the
// extended slice. The order of the appended entries is unspecified. name is expected to
// be valid (ValidateName).
//
// MatchAppend does not allocate when dst has room for the result.
func (x *Index) MatchAppend(dst []Entry, name string) []Entry {
	if len(name) == 0 {
		return dst
	}
	x.gen++
	if x.gen == 0 { // wrapped: forget every stamp
		clear(x.seen)
		x.gen = 1
	}
	if l := x.exact[name]; l != nil {
		dst = x.collect(dst, l)
	}
	if x.wild > 0 {
		// The '$' rule: at the root, wildcards do not reach names starting with '$'.
		r := &x.root
		if name[0] != '$' {
			dst = x.collect(dst, &r.hash)
		}
		level, rest, more := cutLevel(name)
		if c := r.exact[level]; c != nil {
			dst = x.walk(dst, c, rest, more)
		}
		if r.plus != nil && name[0] != '$' {
			dst = x.walk(dst, r.plus, rest, more)
		}
	}
	return dst
}

// walk collects the subscribers under n, which one level of the name has led to; rest is
// the remainder of the name, and more says whether there are levels left (rest may be an
// empty last level).
func (x *Index) walk(dst []Entry, n *node, rest string, more bool) []Entry {
	for {
		// "#" here matches whatever is left of the name, including nothing.
		dst = x.collect(dst, &n.hash)
		if !more {
			return x.collect(dst, &n.subs)
		}
		level, r, m := cutLevel(rest)
		c := n.exact[level]
		if n.plus != nil {
			if c != nil {
				dst = x.walk(dst, c, r, m)
			}
			c = n.plus
		}
		if c == nil {
			return dst
		}
		n, rest, more = c, r, m
	}
}

// collect appends the entries of l that are not yet in dst, and raises the QoS of those
// that are.
func (x *Index) collect(dst []Entry, l *subList) []Entry {
	gen := x.gen
	for _, e := range l.entries {
		s := &x.seen[e.slot]
		if s.gen == gen {
			if d := &dst[s.at]; e.qos > d.QoS {
				d.QoS = e.qos
			}
			continue
		}
		s.gen, s.at = gen, int32(len(dst))
		dst = append(dst, Entry{Sub: e.sub, QoS: e.qos})
	}
	return dst
}

// insert finds or makes the trie position of a valid wildcard filter.
func (x *Index) insert(filter string) (*node, *subList) {
	n := &x.root
	for f := filter; ; {
		level, rest, more := cutLevel(f)
		if level == "#" {
			return n, &n.hash
		}
		var c *node
		if level == "+" {
			if n.plus == nil {
				n.plus = &node{parent: n, key: "+"}
			}
			c = n.plus
		} else if c = n.exact[level]; c == nil {
			if n.exact == nil {
				n.exact = make(map[string]*node)
			}
			c = &node{parent: n, key: strings.Clone(level)}
			n.exact[c.key] = c
		}
		n = c
		if !more {
			return n, &n.subs
		}
		f = rest
	}
}

// lookup finds the trie position of a wildcard filter, or nil.
func (x *Index) lookup(filter string) (*node, *subList) {
	n := &x.root
	for f := filter; ; {
		level, rest, more := cutLevel(f)
		switch {
		case level == "#" && !more:
			return n, &n.hash
		case level == "+":
			n = n.plus
		default:
			n = n.exact[level]
		}
		if n == nil {
			return nil, nil
		}
		if !more {
			return n, &n.subs
		}
		f = rest
	}
}

// prune unlinks n and its ancestors while they hold nothing.
func (x *Index) prune(n *node) {
	for n != &x.root && n.empty() {
		p := n.parent
		if p.plus == n {
			p.plus = nil
		} else {
			delete(p.exact, n.key)
			if len(p.exact) == 0 {
				p.exact = nil // a map never shrinks; drop it
			}
		}
		n.parent = nil
		n = p
	}
}

// acquire counts one more filter for sub and returns its slot.
func (x *Index) acquire(sub SubscriberID) uint32 {
	r, ok := x.subs[sub]
	if !ok {
		if k := len(x.free); k > 0 {
			r.slot = x.free[k-1]
			x.free = x.free[:k-1]
			x.seen[r.slot] = seenAt{}
		} else {
			r.slot = uint32(len(x.seen))
			x.seen = append(x.seen, seenAt{})
		}
	}
	r.count++
	x.subs[sub] = r
	return r.slot
}

// release counts one filter less for e.sub, freeing its slot after the last.
func (x *Index) release(e entry) {
	r := x.subs[e.sub]
	if r.count--; r.count > 0 {
		x.subs[e.sub] = r
		return
	}
	delete(x.subs, e.sub)
	x.free = append(x.free, r.slot)
}
