package board

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// A NIC moves whole Ethernet frames (destination, source, type, payload; no
// frame check sequence) between a board's network controller and its caller.
//
// Receive never blocks: it copies the oldest waiting frame into buf and
// reports true, or reports false when no frame is waiting. A NIC that can say
// when a frame may be waiting also implements [Notifier]; otherwise its user
// polls. Transmit sends one frame; frames shorter than the Ethernet minimum
// (60 octets) are padded by the caller, not by the NIC.
type NIC interface {
	MAC() net.HardwareAddr
	Transmit(frame []byte) error
	Receive(buf []byte) (n int, ok bool)
}

// A Notifier is a [NIC] that signals when frames may be waiting, so its user
// can sleep instead of polling. The channel is level-triggered in spirit: a
// receive from it is a hint to call Receive until it reports false.
type Notifier interface {
	Notify() <-chan struct{}
}

// A Counter is a free-running cycle counter: Counter ticks Freq times a
// second and never goes backwards.
type Counter interface {
	Counter() uint64
	Freq() uint64
}

// Net is a board's network identity as booted. Each board fills it from
// string variables that can be overridden at link time (-ldflags -X), so one
// source tree builds images for many networks.
type Net struct {
	MAC      net.HardwareAddr // nil: the driver picks a random locally administered address
	Addrs    []netip.Prefix   // e.g. 10.0.0.1/24 and fd00::1/64
	Gateway4 netip.Addr       // zero: no IPv4 default route
	Gateway6 netip.Addr       // zero: no IPv6 default route
}

// ParseNet builds a [Net] from the textual forms a board keeps in link-time
// variables: mac may be empty, addrs is a comma-separated list of prefixes,
// and either gateway may be empty.
func ParseNet(mac, addrs, gw4, gw6 string) (Net, error) {
	var n Net
	var err error
	if mac != "" {
		if n.MAC, err = net.ParseMAC(mac); err != nil {
			return Net{}, fmt.Errorf("board: MAC %q: %w", mac, err)
		}
		if len(n.MAC) != 6 {
			return Net{}, fmt.Errorf("board: MAC %q: %d octets, want 6", mac, len(n.MAC))
		}
	}
	for _, s := range strings.Split(addrs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Net{}, fmt.Errorf("board: address %q: %w", s, err)
		}
		n.Addrs = append(n.Addrs, p)
	}
	if gw4 != "" {
		if n.Gateway4, err = netip.ParseAddr(gw4); err != nil || !n.Gateway4.Is4() {
			return Net{}, fmt.Errorf("board: IPv4 gateway %q is not an IPv4 address", gw4)
		}
	}
	if gw6 != "" {
		if n.Gateway6, err = netip.ParseAddr(gw6); err != nil || !n.Gateway6.Is6() {
			return Net{}, fmt.Errorf("board: IPv6 gateway %q is not an IPv6 address", gw6)
		}
	}
	return n, nil
}

// Board is one machine as its board package registers it.
type Board struct {
	// Name is the board's short name, as in its build tag ("mx6ullevk").
	Name string

	// Clock is the cycle counter the latency measurements use.
	Clock Counter

	// Net is the network identity to boot with.
	Net Net

	// OpenNIC brings the network controller up and returns it. It is nil
	// when the board has no network driver; OpenNIC then fails with
	// [ErrNoNIC].
	OpenNIC func(mac net.HardwareAddr) (NIC, error)

	// Console is the serial console's input (the operator's commands, see
	// kernel.Console), or nil when the board cannot read it. Reads block until a
	// line's bytes arrive.
	Console io.Reader

	// Exit stops the machine with a status the host can see (semihosting
	// on arm under QEMU, isa-debug-exit on amd64). Nil when the board
	// cannot report a status; then the runtime's own exit applies.
	Exit func(code int)
}

// ErrTxFull is what a [NIC]'s Transmit returns (possibly wrapped) when its
// transmit ring has no free descriptor right now: the frame was not taken, and the
// caller may try again shortly. It is back-pressure, not a failure; any other
// error from Transmit means the controller refused the frame.
var ErrTxFull = errors.New("board: transmit ring full")

// ErrNoNIC is returned by [Board.Open] on boards without a network driver.
var ErrNoNIC = errors.New("board: no network driver on this board")

// Open brings up the board's network controller with the board's MAC.
func (b *Board) Open() (NIC, error) {
	if b.OpenNIC == nil {
		return nil, fmt.Errorf("%w (%s)", ErrNoNIC, b.Name)
	}
	nic, err := b.OpenNIC(b.Net.MAC)
	if err != nil {
		return nil, fmt.Errorf("board %s: NIC: %w", b.Name, err)
	}
	return nic, nil
}

var (
	mu      sync.Mutex
	current *Board
)

// Register makes b the board of this image. A board package calls it from
// its init function; a second registration panics, since an image that links
// two boards is a build mistake.
func Register(b *Board) {
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		panic(fmt.Sprintf("board: %s registered while %s already is", b.Name, current.Name))
	}
	current = b
}

// Current returns the registered board, or false when no board package was
// linked in (as in hosted builds).
func Current() (*Board, bool) {
	mu.Lock()
	defer mu.Unlock()
	return current, current != nil
}
