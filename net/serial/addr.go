package serial

import (
	"fmt"
	"net/netip"
)

// MaxLines is how many lines have a synthetic address (Options.Index 0..MaxLines-1).
const MaxLines = 65535

// Prefix is where the synthetic addresses of serial lines live: 100::/64, the IPv6
// discard-only prefix (RFC 6666). It is reserved by IANA, never assigned to a host
// and not routed, so no UDP datagram a real peer sends can carry a source address
// in it: an engine that keys clients by address cannot confuse a serial client with
// a UDP one, and access rules can name every serial line at once ("100::/64").
var Prefix = netip.MustParsePrefix("100::/64")

// LineAddr is the synthetic address of the serial line with index i (0-based, the
// order of the daemon's serial_listen lines): [100::i+1]:i+1, so line 0 is
// [100::1]:1 and line 9 is [100::a]:10. Each line has an IP address of its own as
// well as its own port, so the engine's per-address limits (MaxClientsPerAddress)
// and rules apply per line; the clients behind a forwarder on one line share it and
// are told apart by their wireless node ids.
func LineAddr(i int) (netip.AddrPort, error) {
	if i < 0 || i >= MaxLines {
		return netip.AddrPort{}, fmt.Errorf("serial: line index %d out of range 0..%d", i, MaxLines-1)
	}
	a := Prefix.Addr().As16()
	a[14], a[15] = byte((i+1)>>8), byte(i+1)
	return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(i+1)), nil
}
