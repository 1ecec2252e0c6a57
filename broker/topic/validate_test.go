package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", MaxLen)
	for _, tc := range []struct {
		name string
		want error
	}{
		{"a", nil},
		{"sport/tennis/player1", nil},
		{"/", nil},
		{"//", nil},
		{"/finance", nil},
		{"a//b", nil},
		{"a/", nil},
		{"$SYS/broker/uptime", nil},
		{"$", nil},
		{" ", nil},
		{"sport/tennis/player1/ ranking", nil},
		{"ünïcødé/日本/🦫", nil},
		{long, nil},
		{"", ErrEmpty},
		{long + "a", ErrTooLong},
		{"a/+", ErrWildcardName},
		{"+", ErrWildcardName},
		{"#", ErrWildcardName},
		{"a/#", ErrWildcardName},
		{"a+b", ErrWildcardName},
		{"a#", ErrWildcardName},
		{"a\x00b", ErrNul},
		{"\x00", ErrNul},
		{"a/\xff", ErrInvalidUTF8},
		{"\xc3", ErrInvalidUTF8},             // truncated sequence
		{"\xed\xa0\x80", ErrInvalidUTF8},     // a surrogate, U+D800
		{"\xc0\xaf", ErrInvalidUTF8},         // overlong '/'
		{"\xf4\x90\x80\x80", ErrInvalidUTF8}, // beyond U+10FFFF
	} {
		err := ValidateName(tc.name)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ValidateName(%.20q) = %v, want %v", tc.name, err, tc.want)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Filter || e.Value != tc.name {
				t.Errorf("ValidateName(%.20q) = %#v, want an *Error for the name", tc.name, err)
			}
		}
	}
}

func TestValidateFilter(t *testing.T) {
	long := strings.Repeat("a/", MaxLen/2) + "#"
	for _, tc := range []struct {
		filter string
		want   error
	}{
		{"a", nil},
		{"sport/tennis/player1/#", nil},
		{"sport/#", nil},
		{"#", nil},
		{"+", nil},
		{"+/+", nil},
		{"/+", nil},
		{"+/tennis/#", nil},
		{"sport/+/player1", nil},
		{"/", nil},
		{"//", nil},
		{"/#", nil},
		{"+/", nil},
		{"$SYS/#", nil},
		{"$SYS/+/x", nil},
		{"a//+//#", nil},
		{long, nil},
		{"", ErrEmpty},
		{long + "/a", ErrTooLong},
		{"sport/tennis#", ErrHashLevel},
		{"#a", ErrHashLevel},
		{"a/#b", ErrHashLevel},
		{"sport/tennis/#/ranking", ErrHashLast},
		{"#/", ErrHashLast},
		{"#/#", ErrHashLast},
		{"sport+", ErrPlusLevel},
		{"+a", ErrPlusLevel},
		{"a/b+/c", ErrPlusLevel},
		{"++", ErrPlusLevel},
		{"a\x00", ErrNul},
		{"+/\xff", ErrInvalidUTF8},
	} {
		err := ValidateFilter(tc.filter)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ValidateFilter(%.20q) = %v, want %v", tc.filter, err, tc.want)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !e.Filter || e.Value != tc.filter {
				t.Errorf("ValidateFilter(%.20q) = %#v, want an *Error for the filter", tc.filter, err)
			}
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ValidateFilter("a/#/b"), `topic: filter "a/#/b": '#' must be the last level (octet 2)`},
		{ValidateFilter("a/b+"), `topic: filter "a/b+": '+' must occupy a whole level (octet 3)`},
		{ValidateName("a/+"), `topic: name "a/+": wildcard in a topic name (octet 2)`},
		{ValidateName(""), `topic: name "": empty`},
		{ValidateName("ab\x00"), `topic: name "ab\x00": contains U+0000 (octet 2)`},
		{ValidateName("a\xffb"), `topic: name "a\xffb": not valid UTF-8 (octet 1)`},
		{ValidateName(strings.Repeat("x", MaxLen+1)), `topic: name "` + strings.Repeat("x", maxQuoted) +
			`"… (65536 octets): too long, max 65535 octets`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("got  %v\nwant %s", tc.err, tc.want)
		}
	}
}

func TestIsWildcard(t *testing.T) {
	for f, want := range map[string]bool{
		"a": false, "a/b": false, "/": false, "$SYS/x": false,
		"+": true, "#": true, "a/+/b": true, "a/#": true,
	} {
		if got := IsWildcard(f); got != want {
			t.Errorf("IsWildcard(%q) = %v, want %v", f, got, want)
		}
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		short bool
	}{
		{"ab", true}, {"/a", true}, {"//", true}, {"\x00\x01", true}, {"\xff\xfe", true},
		{"a", false}, {"abc", false}, {"", false}, {"a+", false}, {"#a", false}, {"é", true},
	} {
		if got := IsShortName(tc.name); got != tc.short {
			t.Errorf("IsShortName(%q) = %v, want %v", tc.name, got, tc.short)
		}
	}
	if got := ShortID("ab"); got != 0x6162 {
		t.Errorf(`ShortID("ab") = %#04x, want 0x6162`, got)
	}
	if got := ShortName(0x6162); got != "ab" {
		t.Errorf(`ShortName(0x6162) = %q, want "ab"`, got)
	}
	for id := range 1 << 16 {
		if got := ShortID(ShortName(uint16(id))); got != uint16(id) {
			t.Fatalf("ShortID(ShortName(%#04x)) = %#04x", id, got)
		}
	}
	if ShortID("") != 0 || ShortID("a") != 0x6100 || ShortID("abc") != 0x6162 {
		t.Error("ShortID on a name of the wrong length")
	}
}
