package packet

import "fmt"

// Reason says what made a datagram malformed. Drivers count drops by Reason.
type Reason uint8

const (
	ReasonNone          Reason = iota
	ReasonShort                // shorter than its header, or than its type's fixed fields
	ReasonLength               // Length field disagrees with the datagram
	ReasonReservedType         // MsgType is reserved in v1.2
	ReasonLong                 // longer than the type allows
	ReasonFlags                // a flags field holds a reserved value
	ReasonTopicIDType          // TopicIdType does not fit the message
	ReasonEncapsulation        // malformed or nested forwarder encapsulation
	numReasons
)

// NumReasons is the number of Reason values, for arrays of counters indexed by Reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	ReasonNone:          "none",
	ReasonShort:         "short",
	ReasonLength:        "length_mismatch",
	ReasonReservedType:  "reserved_type",
	ReasonLong:          "too_long",
	ReasonFlags:         "bad_flags",
	ReasonTopicIDType:   "bad_topic_id_type",
	ReasonEncapsulation: "bad_encapsulation",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Error describes a malformed datagram: which message type (when the header was
// readable), what is wrong, and the numbers that disagree.
type Error struct {
	Type   Type
	Reason Reason
	Detail string // a short human explanation
	Got    int    // the offending length or value, when there is one
	Want   int
}

func (e *Error) Error() string {
	s := "packet: "
	// No type to name when the datagram was too short to hold one (header's errors:
	// Want is the header length, 2 or 4; every type's own minimum is larger).
	noType := e.Reason == ReasonShort && e.Type == 0 && e.Want <= 4
	if e.Reason != ReasonReservedType && !noType {
		s += e.Type.String() + ": "
	}
	s += e.Detail
	return s
}

func errorf(t Type, r Reason, got, want int, format string, args ...any) *Error {
	return &Error{Type: t, Reason: r, Got: got, Want: want, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of err if it is an *Error, else ReasonNone.
func ReasonOf(err error) Reason {
	if e, ok := err.(*Error); ok {
		return e.Reason
	}
	return ReasonNone
}
