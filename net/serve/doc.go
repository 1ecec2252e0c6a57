// Package serve is the one driver loop of MusQraTT: it moves datagrams between a
// net.PacketConn and the sans-IO broker engine.
//
// One goroutine owns the engine. It reads a datagram, stamps it with a clock tick
// (Datagram.Mark), calls Receive, writes every datagram the engine returns, and calls
// Tick whenever the engine's Deadline has passed, whether or not traffic is arriving.
// Broadcast datagrams (ADVERTISE) go to the configured broadcast addresses.
//
// The same loop runs over a hosted *net.UDPConn (a fast path that neither allocates nor
// converts addresses per datagram, and that detects oversized datagrams with MSG_TRUNC),
// over gVisor's PacketConn on a board, and over any other net.PacketConn in tests.
//
// Serve owns no socket: the caller opens the connections (package net/udp on a host)
// and closes them after Run returns. Run stops when its context is cancelled by
// setting a past read deadline on every connection, so a connection can be reused
// afterwards once its deadline is reset.
//
// Serve logs, rate-limited, what an operator needs to hear about: read and write
// errors, oversized datagrams, and the engine's events (EventLog). It never treats a
// bad datagram or a failed write as fatal.
package serve
