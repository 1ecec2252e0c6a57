// Package serve is the one driver loop of MusQraTT, for every build: it moves
// datagrams between the batched datagram seam ([Bind]) and the sans-IO broker engine.
//
// One goroutine owns the engine. It receives a batch into its own buffers (blocking
// with the engine's Deadline as the read deadline, or polling for a while after
// traffic with Options.BusyPoll), stamps the batch with a clock tick (Datagram.Mark),
// calls Receive for each datagram, sends what each call returns as one batch before
// the next call (the engine's output aliases its buffers until then), and calls Tick
// whenever the engine's Deadline has passed, whether or not traffic is arriving. Its
// notion of time is injected (Options.Now), so the loop is tested on synthetic time.
// Broadcast datagrams (ADVERTISE) go to the configured broadcast addresses.
//
// A Bind is what the platform moves datagrams with: net/udp's recvmmsg/sendmmsg
// sockets on a Linux host, net/netstack's Bind directly on gVisor's UDP endpoint on
// a board, [PacketConnBind] over any net.PacketConn in tests. Several Binds (one per
// listen address) are joined into one by a reader goroutine each; replies leave by
// the Bind the peer was heard on.
//
// Nothing is lost silently: a datagram the Bind does not send is counted by reason
// (Stats.TxDrops: transmit queue full after the Bind's bounded back-pressure, NIC
// error, no route, other) and logged, rate-limited; Stats.Sent counts only what left.
//
// Serve owns no socket: the caller opens the Binds and closes them after Run returns.
// Run stops when its context is cancelled by setting a past read deadline on the
// Bind, so it can be reused afterwards once its deadline is reset.
//
// Serve logs, rate-limited, what an operator needs to hear about: read and write
// errors, oversized datagrams, and the engine's events (EventLog). It never treats a
// bad datagram or a failed write as fatal.
package serve
