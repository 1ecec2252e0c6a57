package broker

import "net/netip"

// State is a client session's state (spec 6.14).
type State uint8

const (
	StateActive       State = iota // connected
	StateAsleep                    // DISCONNECT with a Duration: messages are buffered
	StateAwake                     // PINGREQ with ClientId while asleep: buffered messages are flushed
	StateDisconnected              // DISCONNECT without Duration; a persistent session is kept
	StateLost                      // keep-alive, sleep timer or retries expired; the will was published
	numStates
)

// NumStates is the number of State values.
const NumStates = int(numStates)

var stateNames = [numStates]string{"active", "asleep", "awake", "disconnected", "lost"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "unknown"
}

// EventKind classifies an Event.
type EventKind uint8

const (
	EventLimit      EventKind = iota // a configured limit refused something (Limit says which)
	EventConnect                     // a client connected (or resumed)
	EventDisconnect                  // a client disconnected, went to sleep or was lost
	EventTakeover                    // a session moved to a new address
	EventWill                        // a will was published
	EventRefused                     // a CONNECT was refused (Detail says why)
	EventDenied                      // an access rule refused a publish or subscribe (Detail: what)
)

// Event is an optional notification for the driver to log; the engine itself never logs.
type Event struct {
	Kind     EventKind
	Limit    Limit
	ClientID string
	Addr     netip.AddrPort // the client's address, where known
	State    State
	Detail   string
}
