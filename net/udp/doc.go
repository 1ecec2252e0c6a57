// Package udp owns the hosted UDP sockets MusQraTT serves on: opening them, and
// moving datagrams through them in batches.
//
// Listen takes an address as an operator writes it and returns a *net.UDPConn ready
// for net/serve: a wildcard address ("[::]:1883", ":1883") is one dual-stack socket
// that IPv4 clients reach too (IPV6_V6ONLY off; IPv4 only where the host has no
// IPv6), "0.0.0.0:1883" or any IPv4 address is IPv4 only, any other IPv6 address is
// IPv6 only. Every socket may broadcast (SO_BROADCAST, for ADVERTISE), and its kernel
// buffers can be sized.
//
// NewBind wraps such a socket as a [serve.Bind] (and [serve.Poller], for busy
// polling): the loop receives a batch of datagrams into buffers it owns, with
// netip.AddrPort sources (IPv4 peers of a dual-stack socket unmapped), and sends a
// batch. On Linux a batch is one recvmmsg(2) or sendmmsg(2) and allocates nothing;
// elsewhere it is one datagram per call. A datagram that does not leave is reported
// with the reason the loop counts it under: serve.ErrTxQueueFull once a full send
// buffer has been waited on for a few milliseconds, serve.ErrNoRoute for a
// destination the socket's family or the kernel's routes cannot reach.
//
// The package neither closes the sockets it opens (the caller does, after the loop
// returns) nor decides what to do with a dropped datagram. It is for hosted builds;
// a board's sockets come from net/netstack.
package udp
