package topic

import (
	"errors"
	"fmt"
)

// Sentinel errors for what is wrong with a name or filter. Validation returns an *Error
// that wraps one of them, so callers branch with errors.Is.
var (
	ErrEmpty        = errors.New("empty")
	ErrTooLong      = errors.New("too long")
	ErrInvalidUTF8  = errors.New("not valid UTF-8")
	ErrNul          = errors.New("contains U+0000")
	ErrWildcardName = errors.New("wildcard in a topic name")
	ErrPlusLevel    = errors.New("'+' must occupy a whole level")
	ErrHashLevel    = errors.New("'#' must occupy a whole level")
	ErrHashLast     = errors.New("'#' must be the last level")
)

// Error says which name or filter was rejected, and why.
type Error struct {
	Filter bool   // the value was a filter (else a topic name)
	Value  string // the rejected value
	Offset int    // octet offset of the offending character, or -1
	Err    error  // one of the sentinel errors above
}

// maxQuoted bounds how much of a rejected value an error message quotes.
const maxQuoted = 64

func (e *Error) Error() string {
	what := "name"
	if e.Filter {
		what = "filter"
	}
	var s string
	if len(e.Value) > maxQuoted {
		s = fmt.Sprintf("topic: %s %q… (%d octets): %v", what, e.Value[:maxQuoted], len(e.Value), e.Err)
	} else {
		s = fmt.Sprintf("topic: %s %q: %v", what, e.Value, e.Err)
	}
	switch {
	case e.Err == ErrTooLong:
		s += fmt.Sprintf(", max %d octets", MaxLen)
	case e.Offset >= 0:
		s += fmt.Sprintf(" (octet %d)", e.Offset)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
