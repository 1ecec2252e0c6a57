package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refNames is the naive reference for Names: every name in a map, matched by scanning
// all of them with refMatch.
type refNames map[string]bool

func (r refNames) match(filter string) []string {
	var out []string
	for n := range r {
		if refMatch(filter, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func namesMatch(x *Names, filter string) []string {
	got := x.MatchAppend(nil, filter)
	slices.Sort(got)
	return got
}

func TestNamesBasics(t *testing.T) {
	x := NewNames()
	for _, n := range []string{"a", "a/b", "a/b/c", "a//c", "/", "/a", "$SYS/x", "$SYS", "b/$x", "a/"} {
		if !x.Add(n) {
			t.Fatalf("Add(%q) = false for a new name", n)
		}
	}
	if x.Add("a/b") {
		t.Fatal("Add of a held name = true")
	}
	if x.Len() != 10 {
		t.Fatalf("Len() = %d, want 10", x.Len())
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"#", []string{"/", "/a", "a", "a/", "a//c", "a/b", "a/b/c", "b/$x"}},
		{"a/#", []string{"a", "a/", "a//c", "a/b", "a/b/c"}},
		{"a/+", []string{"a/", "a/b"}},
		{"+", []string{"a"}},
		{"+/+", []string{"/", "/a", "a/", "a/b", "b/$x"}},
		{"a/+/c", []string{"a//c", "a/b/c"}},
		{"$SYS/#", []string{"$SYS", "$SYS/x"}},
		{"$SYS/+", []string{"$SYS/x"}},
		{"+/x", nil},
		{"a/b", []string{"a/b"}},
		{"a/b/c/#", []string{"a/b/c"}},
		{"a/b/c/d/#", nil},
		{"nothing/+", nil},
	} {
		if got := namesMatch(x, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("MatchAppend(%q) = %q, want %q", tc.filter, got, tc.want)
		}
	}
	if !x.Remove("a/b") || x.Remove("a/b") || x.Remove("zz") || x.Has("a/b") || !x.Has("a/b/c") {
		t.Fatal("Remove/Has disagree with the set")
	}
	for _, n := range []string{"a", "a/b/c", "a//c", "/", "/a", "$SYS/x", "$SYS", "b/$x", "a/"} {
		if !x.Remove(n) {
			t.Fatalf("Remove(%q) = false for a held name", n)
		}
	}
	checkNamesEmpty(t, x)
}

func checkNamesEmpty(t *testing.T, x *Names) {
	t.Helper()
	if x.Len() != 0 || len(x.root.children) != 0 || x.root.held {
		t.Fatalf("empty set keeps %d names, %d root children", x.Len(), len(x.root.children))
	}
}

// TestNamesRandom drives Names and the naive reference with the same random adds and
// removes over a small alphabet (many collisions, '$' levels, empty levels) and compares
// the names every random filter matches.
func TestNamesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 10 {
		x, ref := NewNames(), refNames{}
		for op := range 1500 {
			n := randName(r)
			if r.IntN(3) == 0 {
				if got, want := x.Remove(n), ref[n]; got != want {
					t.Fatalf("round %d op %d: Remove(%q) = %v, want %v", round, op, n, got, want)
				}
				delete(ref, n)
			} else {
				if got, want := x.Add(n), !ref[n]; got != want {
					t.Fatalf("round %d op %d: Add(%q) = %v, want %v", round, op, n, got, want)
				}
				ref[n] = true
			}
			if x.Len() != len(ref) {
				t.Fatalf("round %d op %d: Len() = %d, want %d", round, op, x.Len(), len(ref))
			}
			for range 3 {
				f := randFilter(r)
				if r.IntN(4) == 0 {
					f = randName(r) // no wildcard
				}
				if got, want := namesMatch(x, f), ref.match(f); !slices.Equal(got, want) {
					t.Fatalf("round %d op %d: MatchAppend(%q) = %q\nwant %q", round, op, f, got, want)
				}
			}
		}
		for n := range ref {
			x.Remove(n)
		}
		checkNamesEmpty(t, x)
	}
}

// TestNamesVisits: a filter that matches one of 10,000 stored names visits a number of
// nodes that depends on the filter's depth, not on the 10,000 — exact, '+' and '#'.
func TestNamesVisits(t *testing.T) {
	for _, tc := range []struct {
		filter string
		max    uint64
	}{
		{"other/1/temperature", 4},
		{"other/+/temperature", 4},
		{"other/#", 5},
		{"+/1/temperature", 1 + 2 + 2 + 2}, // '+' at the root visits its 2 children
		{"nothing/+/#", 1},
		{"$SYS/#", 1},
	} {
		var visits [2]uint64
		for i, n := range []int{10, 10000} {
			x := NewNames()
			for i := range n {
				x.Add(fmt.Sprintf("site/%d/sensor/temperature", i))
			}
			x.Add("other/1/temperature")
			before := x.Visits()
			got := x.MatchAppend(nil, tc.filter)
			visits[i] = x.Visits() - before
			want := 1
			if tc.filter[0] == 'n' || tc.filter[0] == '$' {
				want = 0
			}
			if len(got) != want || (want == 1 && got[0] != "other/1/temperature") {
				t.Fatalf("MatchAppend(%q) with %d stored = %q", tc.filter, n, got)
			}
		}
		if visits[0] != visits[1] || visits[1] > tc.max {
			t.Errorf("MatchAppend(%q) visited %d nodes over 10 names, %d over 10,000 (want the same, at most %d)", tc.filter, visits[0], visits[1], tc.max)
		}
	}
}

// TestNamesDeep: names far deeper than any stack frame budget are added, matched by '#'
// and removed without recursion.
func TestNamesDeep(t *testing.T) {
	x := NewNames()
	deep := "a" + strings.Repeat("/a", 50000)
	x.Add(deep)
	x.Add("a")
	if got := x.MatchAppend(nil, "a/#"); len(got) != 2 {
		t.Fatalf("a/# matched %d names, want 2", len(got))
	}
	x.Remove(deep)
	x.Remove("a")
	checkNamesEmpty(t, x)
}

func TestNamesMatchAppendAllocs(t *testing.T) {
	x := NewNames()
	for i := range 100 {
		x.Add(fmt.Sprintf("s/%d/t", i))
	}
	dst := make([]string, 0, 200)
	x.MatchAppend(dst, "s/+/t") // warm the work list
	if a := testing.AllocsPerRun(100, func() { dst = x.MatchAppend(dst[:0], "s/+/#") }); a != 0 {
		t.Errorf("MatchAppend allocates %v times with room in dst", a)
	}
}
