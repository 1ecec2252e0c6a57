//go:build !linux

package serve

import "net/netip"

// Busy polling needs a non-blocking read of the raw socket, wired up on Linux only;
// elsewhere (tamago's netstack already polls its NIC) the loop always blocks.

type pollState struct{}

func (c *packetConn) pollable() bool { return false }

func (c *packetConn) initPoll() {}

func (c *packetConn) tryRead([]byte) (int, netip.AddrPort, bool, bool, error) {
	return 0, netip.AddrPort{}, false, false, nil
}
