// Package udp opens the hosted UDP sockets MusQraTT serves on.
//
// Listen takes an address as an operator writes it and returns a *net.UDPConn ready
// for net/serve: a wildcard address ("[::]:1883", ":1883") is one dual-stack socket
// that IPv4 clients reach too (IPV6_V6ONLY off; IPv4 only where the host has no
// IPv6), "0.0.0.0:1883" or any IPv4 address is IPv4 only, any other IPv6 address is
// IPv6 only. Every socket may broadcast (SO_BROADCAST, for ADVERTISE), and its kernel
// buffers can be sized.
//
// This package is for hosted builds; a board's sockets come from net/netstack.
package udp
