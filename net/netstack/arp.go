package netstack

import (
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// GratuitousARP returns a broadcast ARP request announcing that ip is at
// mac, padded to the Ethernet minimum. Neighbours (and QEMU's user network,
// which otherwise drops the first datagram it forwards while it resolves the
// guest) learn the address before the first datagram needs it.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	frame := make([]byte, minFrame)
	eth := header.Ethernet(frame)
	eth.Encode(&header.EthernetFields{
		SrcAddr: linkAddr(mac),
		DstAddr: header.EthernetBroadcastAddress,
		Type:    header.ARPProtocolNumber,
	})
	a := header.ARP(frame[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	ip4 := ip.As4()
	copy(a.HardwareAddressSender(), mac)
	copy(a.ProtocolAddressSender(), ip4[:])
	copy(a.ProtocolAddressTarget(), ip4[:])
	return frame
}
