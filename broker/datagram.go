package broker

import "net/netip"

// Datagram is one UDP payload with its peer address.
//
// Mark is opaque to the broker: the driver stamps a received datagram (for example with
// its clock), and every datagram the broker emits carries the Mark of the input that
// caused it — a PUBLISH delivered later from a queue carries the Mark of the PUBLISH that
// was queued — so the driver measures residence time without a clock in the core.
type Datagram struct {
	Addr netip.AddrPort // on output, the zero AddrPort means "broadcast" (ADVERTISE)
	B    []byte
	Mark uint64
}

// IsBroadcast reports whether d is to be broadcast on every interface that allows it.
func (d Datagram) IsBroadcast() bool { return !d.Addr.IsValid() }
