package serve

import (
	"errors"
	"net/netip"
	"time"
)

// Packet is one datagram of a batch, in a buffer its caller owns.
//
// To receive, the caller sets Buf to an empty buffer (its whole length may be
// filled); the Bind sets N, Addr and Trunc. To send, the caller sets Buf to the
// datagram (its whole length is sent) and Addr to the destination.
type Packet struct {
	Buf   []byte
	N     int            // receive: octets of Buf filled
	Addr  netip.AddrPort // receive: the source, IPv4 unmapped; send: the destination
	Trunc bool           // receive: the datagram was longer than Buf (and cut)
}

// Bind is the batched datagram seam between the driver loop and the sockets, in the
// spirit of wireguard-go's conn.Bind: a batch is received into caller-owned buffers
// and a batch is sent, so that neither side allocates per datagram. Hosted sockets
// (net/udp: recvmmsg/sendmmsg on Linux) and gVisor's UDP endpoint on the image
// (net/netstack) implement it; [PacketConnBind] adapts any net.PacketConn.
//
// Only the loop's goroutine calls ReceiveBatch, SendBatch and TryReceiveBatch;
// SetReadDeadline may be called from any goroutine (it is how a cancellation or
// [Server.Wake] interrupts a blocked ReceiveBatch).
type Bind interface {
	// ReceiveBatch blocks until at least one datagram is waiting, then fills as many
	// of pkts as are waiting (at most len(pkts)) and returns how many. It returns an
	// error that reports Timeout (a net.Error, as os.ErrDeadlineExceeded is) once
	// the read deadline has passed, and one that wraps net.ErrClosed when the Bind
	// was closed.
	ReceiveBatch(pkts []Packet) (n int, err error)

	// SendBatch sends pkts in order and returns how many left. When n < len(pkts),
	// pkts[n] was not sent and err says why (see [ErrTxQueueFull], [ErrNIC],
	// [ErrNoRoute]); the caller counts it and may send the rest. An implementation
	// with a bounded transmit queue waits (bounded) for room before it gives up: a
	// full queue is back-pressure first and a counted drop only after that.
	SendBatch(pkts []Packet) (n int, err error)

	// SetReadDeadline sets when a blocked ReceiveBatch gives up; the zero Time
	// means never, a past one interrupts a ReceiveBatch now.
	SetReadDeadline(t time.Time) error

	// Reaches reports whether this Bind can send to a (its address family).
	Reaches(a netip.Addr) bool

	// BatchSize is the largest batch worth passing (1 where the platform moves one
	// datagram per call).
	BatchSize() int

	// String names the Bind's local address for logs ("[::]:1883").
	String() string
}

// A Poller is a Bind that can also receive without blocking, for busy polling:
// TryReceiveBatch returns 0 and a nil error when no datagram is waiting.
type Poller interface {
	Bind
	TryReceiveBatch(pkts []Packet) (n int, err error)
}

// Reasons for a datagram the engine emitted that did not leave. A Bind wraps one of
// these in the error it returns from SendBatch, so the loop counts the drop under
// the right reason.
var (
	// ErrTxQueueFull: the transmit queue or NIC ring stayed full past the
	// back-pressure bound.
	ErrTxQueueFull = errors.New("transmit queue full")
	// ErrNIC: the network controller refused the frame.
	ErrNIC = errors.New("network controller error")
	// ErrNoRoute: no route or link address for the destination.
	ErrNoRoute = errors.New("no route to destination")
)
