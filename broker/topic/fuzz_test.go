package topic

import (
	"errors"
	"testing"
)

// FuzzMatch checks Match against refMatch on valid pairs, a one-filter Index against
// Match, and that validation and matching never panic on anything.
func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		f.Add(tc.filter, tc.name)
	}
	// An index with every kind of node, to walk with any name, valid or not.
	wide := NewIndex()
	for i, flt := range []string{"#", "+", "+/+", "a/#", "a/+/b", "/", "/+/#", "$SYS/#", "a/b"} {
		wide.Add(flt, SubscriberID(i), uint8(i%3))
	}
	dst := make([]Entry, 0, 16)
	f.Fuzz(func(t *testing.T, filter, name string) {
		dst = wide.MatchAppend(dst[:0], name) // must not panic on any name
		ferr, nerr := ValidateFilter(filter), ValidateName(name)
		for _, err := range []error{ferr, nerr} {
			var e *Error
			if err != nil && (!errors.As(err, &e) || err.Error() == "") {
				t.Fatalf("validation error %#v is not a described *Error", err)
			}
		}
		got := Match(filter, name) // must not panic, valid or not
		_ = IsWildcard(filter)
		_ = IsShortName(name)
		if ferr != nil || nerr != nil {
			return
		}
		if want := refMatch(filter, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", filter, name, got, want)
		}
		x := NewIndex()
		if !x.Add(filter, 7, 1) {
			t.Fatalf("Add(%q) = false on an empty index", filter)
		}
		if m := x.MatchAppend(nil, name); (len(m) == 1) != got || len(m) > 1 {
			t.Fatalf("Index with %q matched %q as %v, Match says %v", filter, name, m, got)
		}
		if !x.Remove(filter, 7) || !x.root.empty() || len(x.exact) != 0 {
			t.Fatalf("Remove(%q) did not empty the index", filter)
		}
	})
}
