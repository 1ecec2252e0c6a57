// Package netstack builds gVisor network stacks for MusQraTT and connects
// them to Ethernet frames.
//
// It owns five things:
//
//   - [New]: a stack with IPv4, IPv6, ARP, ICMP and UDP (TCP on request);
//   - [Stack.AddInterface]: a gVisor link endpoint of this package's own over a
//     [board.NIC] (frames in and out), with a gratuitous ARP at start, and its
//     counters ([Stack.InterfaceStats]);
//   - [Stack.ListenBind] and [Stack.ListenBindAddr]: the broker's port, a
//     [UDPBind] — net/serve's batched datagram seam (serve.Bind, serve.Poller)
//     as a transport endpoint of its own on gVisor's demultiplexer (gVisor's IP
//     layer below it, its UDP endpoint not used), dual stack, allocating nothing
//     per datagram;
//   - [Stack.Socket]: sockets for the standard library's net package, with
//     the signature of tamago-go's net.SocketFunc, so that on bare metal
//     net.Dial, net.Listen and net.ListenPacket (TCP with [Config.TCP], UDP;
//     IPv4 and IPv6) reach the stack, and with them crypto/tls and MQTT
//     clients such as the upstream bridge; [Stack.ListenUDP] is the same
//     adapter (gVisor's gonet) for tests and tools;
//   - [NewLink]: an in-process Ethernet segment joining stacks, which can
//     drop, duplicate, delay and reorder frames by a seeded plan, so hosted
//     tests exercise the same glue and stack a board does.
//
// It does not own drivers (board/<name>) nor the broker. gVisor appears
// nowhere else in the module.
//
// # Frames out: no hidden queue
//
// The link endpoint does the Ethernet framing itself and is also the NIC's
// queueing discipline, so a packet the stack writes is flattened into one
// reused frame buffer, padded to the 60-octet minimum and handed to the NIC's
// Transmit synchronously, by the goroutine that wrote it. There is no queue
// between the stack and the NIC to overflow unseen (gVisor's channel endpoint,
// used before, silently discarded frames beyond its 256). A NIC whose transmit
// ring is full answers [board.ErrTxFull] (possibly wrapped); the frame is then
// offered again, yielding in between, for up to [Interface.TxWait]
// ([DefaultTxWait]), and after that it is counted as TxQueueFull and the write
// fails with gVisor's ErrNoBufferSpace. Any other error from Transmit is counted
// as TxNICErrors and fails the write too. A [UDPBind] writes through its route
// itself and so sees these errors directly: SendBatch reports them as
// serve.ErrTxQueueFull and serve.ErrNIC. Sockets from [Stack.Socket] and
// [Stack.ListenUDP] keep Linux's behaviour (a UDP write whose frame was refused
// is reported as sent unless IP_RECVERR is set); their refused frames are still
// counted in [InterfaceStats].
// Packets written while a neighbour is being resolved wait in gVisor's own
// small per-neighbour queue and are sent later by gVisor; a failure then is
// counted here but reaches no caller, and since gVisor flushes that queue after
// the entry is usable, a packet written just then can overtake them (only the
// first datagrams to a neighbour not yet resolved; UDP promises no order).
//
// # Frames in
//
// One goroutine per interface takes frames from the NIC (Receive never
// blocks; a [board.Notifier] says when to look again, otherwise
// [Interface.Idle] runs between polls) directly into a view of gVisor's pooled
// memory, which becomes the packet's payload: one copy, no allocation here.
//
// # The broker's port
//
// gVisor's UDP endpoint allocates per datagram (a route per unconnected write,
// interface boxings of the IP header and a record per datagram received), so
// [UDPBind] replaces it for the broker's port: registered with the stack's
// transport demultiplexer under a reserved port, it receives each UDP packet
// after gVisor's IP layer (validation, reassembly, demultiplexing), checks the
// UDP length and checksum itself, and holds the packet buffer (a reference) in a
// bounded ring (4096 datagrams, 1 MiB of frames, like a socket's receive buffer;
// past it a datagram is dropped and counted in [BindStats]) until the loop copies
// it out. It sends by building the UDP header in a pooled packet buffer and
// writing through a route cached per peer (found once, released when the cache
// is full or the route fails), with Don't Fragment set when the datagram fits
// the MTU as Linux does, which also spares the IPv4 identification gVisor would
// draw (and allocate for) otherwise. ICMP errors are not reported to the loop.
//
// # Allocations
//
// A steady-state round trip between two stacks (a datagram each way) allocates
// nothing through [UDPBind] (alloc_test.go), against 34 through the gonet
// adapter and 42 with gVisor's channel endpoint as this package was before. The
// unimpaired in-process [Link] allocates nothing per frame (each port keeps a
// ring of reused frame buffers).
package netstack
