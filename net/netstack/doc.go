// Package netstack builds gVisor network stacks for MusQraTT and connects
// them to Ethernet frames.
//
// It owns four things:
//
//   - [New]: a stack with IPv4, IPv6, ARP, ICMP and UDP (TCP on request);
//   - [Stack.AddInterface]: the glue from a [board.NIC] (frames in and out)
//     to a gVisor link endpoint, with a gratuitous ARP at start;
//     [Stack.ListenUDP] then gives the [net.PacketConn] the driver loop
//     (net/serve) runs on, exactly as it runs on a Linux socket;
//   - [Stack.Socket]: sockets for the standard library's net package, with
//     the signature of tamago-go's net.SocketFunc, so that on bare metal
//     net.Dial, net.Listen and net.ListenPacket (TCP with [Config.TCP], UDP;
//     IPv4 and IPv6) reach the stack, and with them crypto/tls and MQTT
//     clients such as the upstream bridge;
//   - [NewLink]: an in-process Ethernet segment joining stacks, which can
//     drop, duplicate, delay and reorder frames by a seeded plan, so hosted
//     tests exercise the same glue and stack a board does.
//
// It does not own drivers (board/<name>) nor the broker. gVisor appears
// nowhere else in the module.
//
// The glue moves frames through gVisor's channel endpoint wrapped in its
// ethernet endpoint: outbound packets leave the channel with their Ethernet
// header already pushed and are padded to the 60-octet minimum here; inbound
// frames enter whole and the ethernet endpoint parses the header.
package netstack
