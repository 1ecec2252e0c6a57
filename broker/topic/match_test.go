package topic

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// matchCases are (filter, name, match) triples: the examples of MQTT 3.1.1 section 4.7,
// the '$' rule, empty levels and '/' edge cases.
var matchCases = []struct {
	filter, name string
	want         bool
}{
	// 4.7.1.2: multi-level wildcard.
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/player1/#", "sport/tennis/player2", false},
	{"sport/tennis/player1/#", "sport/tennis", false},
	{"sport/#", "sport", true},
	{"sport/#", "sports", false},
	{"sport/#", "sport/", true},
	{"#", "sport", true},
	{"#", "sport/tennis/player1", true},
	{"#", "/", true},
	{"#", "/a", true},
	// 4.7.1.3: single-level wildcard.
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+", "sport", true},
	{"+/tennis/#", "sport/tennis", true},
	{"+/tennis/#", "sport/tennis/player1", true},
	{"+/tennis/#", "sport/golf", false},
	{"sport/+/player1", "sport/tennis/player1", true},
	{"sport/+/player1", "sport/player1", false},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	// 4.7.2: topics beginning with '$'.
	{"#", "$SYS/monitor/Clients", false},
	{"#", "$SYS", false},
	{"+", "$SYS", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+/#", "$SYS", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+/Clients", "$SYS/monitor/Clients", true},
	{"$SYS", "$SYS", true},
	{"a/+", "a/$b", true}, // the rule is about the first character only
	{"a/#", "a/$b", true},
	{"+/$b", "a/$b", true},
	{"$+", "$a", false}, // not a valid filter, but no wildcard meaning either
	// 4.7.3: case and spaces matter.
	{"ACCOUNTS", "Accounts", false},
	{"Accounts payable", "Accounts payable", true},
	{"Accounts payable", "Accounts  payable", false},
	// Empty levels and '/'.
	{"/", "/", true},
	{"+/+", "/", true},
	{"+", "/", false},
	{"/#", "/", true},
	{"/#", "/a/b", true},
	{"/#", "a", false},
	{"+/#", "/", true},
	{"+/#", "a", true},
	{"+/+/#", "a", false},
	{"a/+/b", "a//b", true},
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
	{"a/b", "a/b/", false},
	{"a/b/", "a/b", false},
	{"a/b/#", "a/b/", true},
	{"a/b/+", "a/b/", true},
	{"a/+", "a//", false},
	{"a/+/", "a//", true},
	{"//", "//", true},
	{"+/+/+", "//", true},
	{"/", "//", false},
	{"a", "a", true},
	{"a", "b", false},
	{"a", "ab", false},
	{"ab", "a", false},
	{"a/b", "a", false},
	{"a", "a/b", false},
	{"+/b", "a/b/c", false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		if got := Match(tc.filter, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.filter, tc.name, got, tc.want)
		}
		if ValidateFilter(tc.filter) == nil && ValidateName(tc.name) == nil {
			if got := refMatch(tc.filter, tc.name); got != tc.want {
				t.Errorf("refMatch(%q, %q) = %v, want %v (the reference is wrong)", tc.filter, tc.name, got, tc.want)
			}
		}
	}
}

func TestMatchEmpty(t *testing.T) {
	for _, tc := range [][2]string{{"", ""}, {"#", ""}, {"", "a"}, {"+", ""}} {
		if Match(tc[0], tc[1]) {
			t.Errorf("Match(%q, %q) = true for an empty filter or name", tc[0], tc[1])
		}
	}
}

// Levels over a small alphabet, so that random filters and names collide often.
var (
	nameLevels   = []string{"a", "b", "", "$s", "ab"}
	filterLevels = []string{"a", "b", "", "$s", "ab", "+", "+", "+"}
)

func randName(r *rand.Rand) string {
	var sb strings.Builder
	for i := range 1 + r.IntN(4) {
		if i > 0 {
			sb.WriteByte('/')
		}
		sb.WriteString(nameLevels[r.IntN(len(nameLevels))])
	}
	if sb.Len() == 0 { // a single empty level is an empty name
		return "/"
	}
	return sb.String()
}

func randFilter(r *rand.Rand) string {
	var levels []string
	for range r.IntN(4) {
		levels = append(levels, filterLevels[r.IntN(len(filterLevels))])
	}
	if len(levels) == 0 || r.IntN(3) == 0 {
		levels = append(levels, "#")
	}
	f := strings.Join(levels, "/")
	if f == "" {
		return "/"
	}
	return f
}

func TestMatchRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	matched := 0
	for range 20000 {
		f, n := randFilter(r), randName(r)
		if err := ValidateFilter(f); err != nil {
			t.Fatalf("generator made a bad filter: %v", err)
		}
		if err := ValidateName(n); err != nil {
			t.Fatalf("generator made a bad name: %v", err)
		}
		got, want := Match(f, n), refMatch(f, n)
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", f, n, got, want)
		}
		if got {
			matched++
		}
	}
	if matched < 2000 {
		t.Errorf("only %d of 20000 random pairs matched: the generator is too sparse", matched)
	}
}

func TestMatchAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		for _, tc := range matchCases {
			_ = Match(tc.filter, tc.name)
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per run", allocs)
	}
}
