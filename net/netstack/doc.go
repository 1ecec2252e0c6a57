// Package netstack builds gVisor network stacks for MusQraTT and connects
// them to Ethernet frames.
//
// It owns five things:
//
//   - [New]: a stack with IPv4, IPv6, ARP, ICMP and UDP (TCP on request);
//   - [Stack.AddInterface]: a gVisor link endpoint of this package's own over a
//     [board.NIC] (frames in and out), with a gratuitous ARP at start, and its
//     counters ([Stack.InterfaceStats]);
//   - [Stack.ListenBind] and [Stack.ListenBindAddr]: the broker's socket, a
//     [UDPBind] — net/serve's batched datagram seam (serve.Bind, serve.Poller)
//     directly on gVisor's UDP endpoint, dual stack, allocating nothing per
//     datagram itself;
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
// as TxNICErrors and fails the write too. A [UDPBind] reports these as
// serve.ErrTxQueueFull and serve.ErrNIC from SendBatch (it sets IP_RECVERR:
// without it gVisor, like Linux, reports a UDP write whose frame was refused as
// sent). Sockets from [Stack.Socket] and [Stack.ListenUDP] keep Linux's
// behaviour; their refused frames are still counted in [InterfaceStats].
// Packets written while a neighbour is being resolved wait in gVisor's own
// small per-neighbour queue and are sent later by gVisor; a failure then is
// counted here but reaches no caller.
//
// # Frames in
//
// One goroutine per interface takes frames from the NIC (Receive never
// blocks; a [board.Notifier] says when to look again, otherwise
// [Interface.Idle] runs between polls) directly into a view of gVisor's pooled
// memory, which becomes the packet's payload: one copy, no allocation here.
//
// # Allocations
//
// A steady-state round trip between two stacks (a datagram each way) allocates
// 20 objects, all inside gVisor (see alloc_test.go for which), against 42 with
// the channel endpoint and the gonet adapter. The unimpaired in-process [Link]
// allocates nothing per frame (each port keeps a ring of reused frame buffers).
package netstack
