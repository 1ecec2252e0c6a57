package topic

import "strings"

// Names is a set of topic names held in a trie by level, for finding the names a filter
// matches without looking at the others: the broker keeps its retained topics in one, so
// that a SUBSCRIBE costs what its filter reaches, not what is stored.
//
// MatchAppend follows the filter down the trie: a literal level is one map lookup, '+'
// visits the children of the node it is at (only those), and a last '#' collects the
// subtree below (every node of which leads to a name it matches). A filter that starts
// with a wildcard does not reach names starting with '$'. Nodes left without names by
// Remove are pruned, so every node has a name at or below it and memory follows the set.
//
// Names is not safe for concurrent use.
type Names struct {
	root   nameNode
	n      int
	visits uint64
	stack  []nameFrame // MatchAppend's work list, reused
	nodes  []*nameNode // collect's work list, reused
}

type nameNode struct {
	parent   *nameNode
	key      string               // this node's level under parent
	children map[string]*nameNode // nil when none
	name     string               // the whole name, when held ends here
	held     bool
}

// nameFrame is a node MatchAppend has reached with the filter levels still to match
// (rest; more says whether any are left, rest may be an empty last level).
type nameFrame struct {
	n     *nameNode
	rest  string
	more  bool
	depth int
}

// NewNames returns an empty set.
func NewNames() *Names { return &Names{} }

// Len returns the number of names held.
func (x *Names) Len() int { return x.n }

// Visits returns how many trie nodes MatchAppend has visited since the set was made: a
// deterministic measure of its cost.
func (x *Names) Visits() uint64 { return x.visits }

// Add puts name in the set and reports whether it was not there. name is expected to be
// valid (ValidateName); Add ignores an empty name.
func (x *Names) Add(name string) bool {
	if name == "" {
		return false
	}
	n, rest := &x.root, name
	for {
		level, r, more := cutLevel(rest)
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*nameNode)
			}
			// A copy: a substring would keep the whole name alive after it is removed.
			c = &nameNode{parent: n, key: strings.Clone(level)}
			n.children[level] = c
		}
		n = c
		if !more {
			break
		}
		rest = r
	}
	if n.held {
		return false
	}
	n.held, n.name = true, name
	x.n++
	return true
}

// Has reports whether name is in the set.
func (x *Names) Has(name string) bool {
	n := x.find(name)
	return n != nil && n.held
}

// Remove takes name out of the set and reports whether it was there.
func (x *Names) Remove(name string) bool {
	n := x.find(name)
	if n == nil || !n.held {
		return false
	}
	n.held, n.name = false, ""
	x.n--
	for n != &x.root && !n.held && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.key)
		if len(p.children) == 0 {
			p.children = nil
		}
		n.parent = nil
		n = p
	}
	return true
}

func (x *Names) find(name string) *nameNode {
	if name == "" {
		return nil
	}
	n, rest := &x.root, name
	for {
		level, r, more := cutLevel(rest)
		if n = n.children[level]; n == nil {
			return nil
		}
		if !more {
			return n
		}
		rest = r
	}
}

// MatchAppend appends to dst every name in the set that filter matches (Match's rules)
// and returns the extended slice. The order of the appended names is unspecified. filter
// is expected to be valid (ValidateFilter). Its cost is the nodes it visits: the
// filter's depth for a filter without wildcards, the children of each node a '+' is
// matched at, and the subtree under a '#', which holds only matching names.
func (x *Names) MatchAppend(dst []string, filter string) []string {
	if filter == "" || x.n == 0 {
		return dst
	}
	st := append(x.stack[:0], nameFrame{n: &x.root, rest: filter, more: true})
	hi := 0 // the most frames held, cleared after so none keeps a node alive
	for len(st) > 0 {
		hi = max(hi, len(st))
		f := st[len(st)-1]
		st = st[:len(st)-1]
		x.visits++
		if !f.more {
			if f.n.held {
				dst = append(dst, f.n.name)
			}
			continue
		}
		level, rest, more := cutLevel(f.rest)
		switch level {
		case "#":
			// The parent rule: "a/#" matches "a" (never the root, which is no name).
			if f.n.held {
				dst = append(dst, f.n.name)
			}
			for key, c := range f.n.children {
				if f.depth == 0 && key != "" && key[0] == '$' {
					continue
				}
				dst = x.collect(dst, c)
			}
		case "+":
			for key, c := range f.n.children {
				if f.depth == 0 && key != "" && key[0] == '$' {
					continue
				}
				st = append(st, nameFrame{n: c, rest: rest, more: more, depth: f.depth + 1})
			}
		default:
			if c := f.n.children[level]; c != nil {
				st = append(st, nameFrame{n: c, rest: rest, more: more, depth: f.depth + 1})
			}
		}
	}
	clear(st[:hi])
	x.stack = st[:0]
	return dst
}

// collect appends every name at or under n (iteratively: names may be deep).
func (x *Names) collect(dst []string, n *nameNode) []string {
	ns := append(x.nodes[:0], n)
	hi := 0
	for len(ns) > 0 {
		hi = max(hi, len(ns))
		n := ns[len(ns)-1]
		ns = ns[:len(ns)-1]
		x.visits++
		if n.held {
			dst = append(dst, n.name)
		}
		for _, c := range n.children {
			ns = append(ns, c)
		}
	}
	clear(ns[:hi])
	x.nodes = ns[:0]
	return dst
}
