package topic

import (
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest topic name or filter, in octets (an MQTT UTF-8 string).
const MaxLen = 65535

// ValidateName reports whether name may be the topic of a PUBLISH: 1..MaxLen octets of
// valid UTF-8 with no U+0000 and no wildcard ('+', '#'). Empty levels are allowed ("/",
// "a//b"). The error is an *Error.
func ValidateName(name string) error {
	if err := validateString(name, false); err != nil {
		return err
	}
	if i := strings.IndexAny(name, "+#"); i >= 0 {
		return &Error{Value: name, Offset: i, Err: ErrWildcardName}
	}
	return nil
}

// ValidateFilter reports whether filter may be subscribed to: 1..MaxLen octets of valid
// UTF-8 with no U+0000, where '+' occupies a whole level and '#' only the whole last
// level. The error is an *Error.
func ValidateFilter(filter string) error {
	if err := validateString(filter, true); err != nil {
		return err
	}
	start := 0 // first octet of the current level
	for i := 0; i < len(filter); i++ {
		switch filter[i] {
		case '/':
			start = i + 1
		case '+':
			if i != start || (i+1 < len(filter) && filter[i+1] != '/') {
				return &Error{Filter: true, Value: filter, Offset: i, Err: ErrPlusLevel}
			}
		case '#':
			if i != start {
				return &Error{Filter: true, Value: filter, Offset: i, Err: ErrHashLevel}
			}
			if i+1 < len(filter) {
				if filter[i+1] == '/' {
					return &Error{Filter: true, Value: filter, Offset: i, Err: ErrHashLast}
				}
				return &Error{Filter: true, Value: filter, Offset: i, Err: ErrHashLevel}
			}
		}
	}
	return nil
}

// validateString checks what names and filters share: length, UTF-8, no U+0000.
func validateString(s string, filter bool) error {
	switch {
	case len(s) == 0:
		return &Error{Filter: filter, Value: s, Offset: -1, Err: ErrEmpty}
	case len(s) > MaxLen:
		return &Error{Filter: filter, Value: s, Offset: -1, Err: ErrTooLong}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return &Error{Filter: filter, Value: s, Offset: i, Err: ErrNul}
	}
	if !utf8.ValidString(s) {
		return &Error{Filter: filter, Value: s, Offset: invalidUTF8At(s), Err: ErrInvalidUTF8}
	}
	return nil
}

func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i
			}
		}
	}
	return -1
}

// IsWildcard reports whether filter contains a wildcard character. For a valid filter
// that is the same as having a '+' or '#' level, i.e. matching more than one name.
func IsWildcard(filter string) bool {
	return strings.ContainsAny(filter, "+#")
}
