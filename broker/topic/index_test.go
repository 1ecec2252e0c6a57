package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func matchSorted(x *Index, name string) []Entry {
	got := x.MatchAppend(nil, name)
	sortEntries(got)
	return got
}

func TestIndexBasics(t *testing.T) {
	x := NewIndex()
	adds := []struct {
		filter string
		sub    SubscriberID
		qos    uint8
		added  bool
	}{
		{"sport/tennis/player1", 1, 0, true},
		{"sport/tennis/+", 1, 1, true},
		{"sport/#", 2, 2, true},
		{"#", 3, 0, true},
		{"+/+/player1", 3, 1, true},
		{"$SYS/#", 4, 0, true},
		{"sport/tennis/player1", 1, 2, false}, // same pair: QoS replaced
		{"sport/tennis/#/x", 5, 0, false},     // invalid: ignored
		{"", 5, 0, false},
	}
	for _, a := range adds {
		if got := x.Add(a.filter, a.sub, a.qos); got != a.added {
			t.Errorf("Add(%q, %d, %d) = %v, want %v", a.filter, a.sub, a.qos, got, a.added)
		}
	}
	if x.Len() != 6 {
		t.Errorf("Len() = %d, want 6", x.Len())
	}
	for _, tc := range []struct {
		name string
		want []Entry
	}{
		{"sport/tennis/player1", []Entry{{1, 2}, {2, 2}, {3, 1}}},
		{"sport/tennis/player2", []Entry{{1, 1}, {2, 2}, {3, 0}}},
		{"sport", []Entry{{2, 2}, {3, 0}}},
		{"golf", []Entry{{3, 0}}},
		{"$SYS/uptime", []Entry{{4, 0}}},
		{"$SYS", []Entry{{4, 0}}},
		{"$other", nil},
		{"", nil},
	} {
		if got := matchSorted(x, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("MatchAppend(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}

	// dst keeps what it had; dedup only looks at what this call appended.
	dst := x.MatchAppend([]Entry{{1, 0}, {9, 9}}, "golf")
	if want := []Entry{{1, 0}, {9, 9}, {3, 0}}; !slices.Equal(dst, want) {
		t.Errorf("MatchAppend onto a non-empty dst = %v, want %v", dst, want)
	}

	if x.Remove("sport/tennis/player1", 2) || x.Remove("nope", 1) || x.Remove("sport/+/x", 1) || x.Remove("a/#/b", 1) {
		t.Error("Remove of a pair that is not there reported true")
	}
	if !x.Remove("sport/tennis/player1", 1) || x.Remove("sport/tennis/player1", 1) {
		t.Error("Remove of an exact pair: want true once")
	}
	x.RemoveAll(3, []string{"#", "+/+/player1", "never/added"})
	if got, want := matchSorted(x, "sport/tennis/player1"), []Entry{{1, 1}, {2, 2}}; !slices.Equal(got, want) {
		t.Errorf("after removes: %v, want %v", got, want)
	}
	if x.Len() != 3 {
		t.Errorf("Len() = %d, want 3", x.Len())
	}
	x.RemoveAll(1, []string{"sport/tennis/+"})
	x.RemoveAll(2, []string{"sport/#"})
	x.RemoveAll(4, []string{"$SYS/#"})
	checkEmpty(t, x)
}

// checkEmpty asserts that an index with nothing in it holds no memory for what it held.
func checkEmpty(t *testing.T, x *Index) {
	t.Helper()
	if x.Len() != 0 || x.wild != 0 {
		t.Errorf("Len() = %d, wild = %d, want 0", x.Len(), x.wild)
	}
	if len(x.exact) != 0 {
		t.Errorf("%d exact filters left", len(x.exact))
	}
	if !x.root.empty() {
		t.Errorf("trie not pruned: root has %d exact children, plus=%v, %d subs, %d hash",
			len(x.root.exact), x.root.plus != nil, len(x.root.subs.entries), len(x.root.hash.entries))
	}
	if len(x.subs) != 0 || len(x.free) != len(x.seen) {
		t.Errorf("%d subscribers hold slots; %d of %d slots free", len(x.subs), len(x.free), len(x.seen))
	}
}

// TestIndexRandom drives an Index and the reference with the same random adds and
// removes, and compares every match.
func TestIndexRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		x, ref := NewIndex(), refIndex{}
		type pair struct {
			f   string
			sub SubscriberID
		}
		var held []pair
		nsubs := 1 + r.IntN(40)
		for op := range 1500 {
			switch k := r.IntN(10); {
			case k < 5 || len(held) == 0:
				f, sub, q := randFilter(r), SubscriberID(r.IntN(nsubs)*7919), uint8(r.IntN(3))
				if r.IntN(3) == 0 {
					f = randName(r) // an exact filter
				}
				got, want := x.Add(f, sub, q), ref.add(f, sub, q)
				if got != want {
					t.Fatalf("round %d op %d: Add(%q, %d) = %v, want %v", round, op, f, sub, got, want)
				}
				if want {
					held = append(held, pair{f, sub})
				}
			case k < 8:
				i := r.IntN(len(held))
				p := held[i]
				held[i] = held[len(held)-1]
				held = held[:len(held)-1]
				if !x.Remove(p.f, p.sub) || !ref.remove(p.f, p.sub) {
					t.Fatalf("round %d op %d: Remove(%q, %d) = false for a held pair", round, op, p.f, p.sub)
				}
			default:
				f, sub := randFilter(r), SubscriberID(r.IntN(nsubs)*7919)
				if got, want := x.Remove(f, sub), ref.remove(f, sub); got != want {
					t.Fatalf("round %d op %d: Remove(%q, %d) = %v, want %v", round, op, f, sub, got, want)
				}
				if i := slices.Index(held, pair{f, sub}); i >= 0 {
					held = slices.Delete(held, i, i+1)
				}
			}
			if x.Len() != ref.len() {
				t.Fatalf("round %d op %d: Len() = %d, want %d", round, op, x.Len(), ref.len())
			}
			n := randName(r)
			if got, want := matchSorted(x, n), ref.match(n); !slices.Equal(got, want) {
				t.Fatalf("round %d op %d: MatchAppend(%q) = %v\nwant %v", round, op, n, got, want)
			}
		}
		for _, p := range held {
			x.Remove(p.f, p.sub)
		}
		checkEmpty(t, x)
	}
}

// TestIndexGenerationWrap checks deduplication across the wrap of the generation counter.
func TestIndexGenerationWrap(t *testing.T) {
	x := NewIndex()
	x.Add("a/#", 1, 0)
	x.Add("a/+", 1, 2)
	x.Add("a/b", 2, 1)
	x.gen = ^uint32(0) - 2
	want := []Entry{{1, 2}, {2, 1}}
	for range 6 {
		if got := matchSorted(x, "a/b"); !slices.Equal(got, want) {
			t.Fatalf("gen %d: %v, want %v", x.gen, got, want)
		}
	}
}

// TestIndexLargeList covers the position map of a long subscriber list.
func TestIndexLargeList(t *testing.T) {
	x := NewIndex()
	const n = 200
	for _, f := range []string{"big/topic", "big/+"} {
		for i := range n {
			if !x.Add(f, SubscriberID(i), 0) {
				t.Fatalf("Add(%q, %d) = false", f, i)
			}
		}
		for i := range n {
			if x.Add(f, SubscriberID(i), 1) {
				t.Fatalf("second Add(%q, %d) = true", f, i)
			}
		}
	}
	got := x.MatchAppend(nil, "big/topic")
	if len(got) != n {
		t.Fatalf("%d entries, want %d", len(got), n)
	}
	for _, e := range got {
		if e.QoS != 1 {
			t.Fatalf("entry %v: QoS not replaced", e)
		}
	}
	for i := n - 1; i >= 0; i -= 2 {
		x.Remove("big/topic", SubscriberID(i))
	}
	for i := 0; i < n; i += 2 {
		x.Remove("big/+", SubscriberID(i))
	}
	if got := len(x.MatchAppend(nil, "big/topic")); got != n {
		t.Fatalf("%d entries after removing half of each filter, want %d", got, n)
	}
	for i := range n {
		x.Remove("big/topic", SubscriberID(i))
		x.Remove("big/+", SubscriberID(i))
	}
	checkEmpty(t, x)
}

// TestIndexChurn checks that memory stays bounded when subscriptions come and go.
func TestIndexChurn(t *testing.T) {
	x := NewIndex()
	for i := range 10000 {
		sub := SubscriberID(i)
		f := fmt.Sprintf("dev/%d/+/temp", i)
		x.Add(f, sub, 1)
		x.Add("dev/#", sub, 0)
		if i >= 10 {
			old := SubscriberID(i - 10)
			x.RemoveAll(old, []string{fmt.Sprintf("dev/%d/+/temp", i-10), "dev/#"})
		}
	}
	if x.Len() != 20 || len(x.subs) != 10 || len(x.seen) > 11 {
		t.Errorf("Len %d, %d subscribers, %d slots: want 20, 10, <= 11", x.Len(), len(x.subs), len(x.seen))
	}
	if c := cap(x.root.exact["dev"].hash.entries); c > shrinkMin {
		t.Errorf("dev/# list capacity %d after churn", c)
	}
}

func TestIndexMatchAppendAllocs(t *testing.T) {
	x := NewIndex()
	for i := range 100 {
		sub := SubscriberID(i)
		x.Add(fmt.Sprintf("dev/%d/temp", i), sub, 0)
		x.Add(fmt.Sprintf("dev/%d/+", i), sub, 1)
		x.Add("dev/#", sub, 2)
		x.Add("+/+/temp", sub, 0)
	}
	dst := make([]Entry, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst = x.MatchAppend(dst[:0], "dev/42/temp")
	})
	if allocs != 0 {
		t.Errorf("MatchAppend allocates %v times per run", allocs)
	}
	if len(dst) != 100 {
		t.Errorf("%d entries, want 100", len(dst))
	}
}
