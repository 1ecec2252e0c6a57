// Package kernel is MusQraTT's composition root, shared by the hosted daemon
// (cmd/musqratt) and the bare-metal image: its configuration (one file format, parsed
// by ParseConfig, with an embedded default), and Run, which builds the broker engine
// and drives it with net/serve over the connections it is given.
//
// Kernel opens no socket itself: the hosted daemon hands Run *net.UDPConn sockets from
// net/udp, the image hands it gVisor's PacketConn. Everything else — logging of engine
// events, broadcast addresses, the driver's counters — is wired here, once, for both.
package kernel
