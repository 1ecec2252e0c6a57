// Package serial serves MQTT-SN over a byte stream — a tty, a pty, a board's UART —
// as one more implementation of the batched datagram seam ([serve.Bind]), on the same
// engine and driver loop as UDP.
//
// It owns the line: framing, resynchronisation, the line's synthetic address, and
// the goroutines that read and write the stream. It does not own the engine, the
// loop, or the daemon's configuration: the daemon opens each "serial_listen DEVICE
// BAUD" line with [Open] (Options.Index = its position among those lines) and hands
// the Binds with the UDP ones to serve.NewBind.
//
// # Framing
//
// Frames are MQTT-SN messages back to back, delimited by their own Length field (one
// octet, or 0x01 and two octets for 256..65535), with nothing added: the framing
// mqtt-sn-tools' serial bridge uses, and what a microcontroller or a radio modem in
// transparent mode sends when it writes its MQTT-SN datagrams to a UART. An
// ENCAPSULATED message (the forwarder encapsulation, 0xFE) is one frame: its header
// (whose Length counts only itself) and the complete message inside.
//
// # Resynchronisation
//
// A length-framed line has no delimiter to hunt for, so every octet offset is a
// candidate frame. A candidate is a frame when its Length is at least its own
// header and at most Options.MaxFrame, its MsgType is a defined type, its body has
// a size that type allows (fixed-size messages exactly theirs), and the whole frame
// decodes with broker/packet; otherwise one octet is skipped and the next offset is
// tried. Skipped octets are counted (DeframeStats.Skipped), and each run of them
// once (Discards: a lost frame or a burst of noise). So a bad length (0x00, one
// beyond MaxFrame, a size its type cannot have) costs one octet at once. A
// candidate whose length points past what has arrived waits for more octets until
// the line has been quiet for the inter-byte timeout (Options.InterByteTimeout: 20
// character times at the baud rate, at least 20 ms, more than a USB adapter's
// latency timer); then it is given up (Stalls) and the octets behind its first are
// tried again. A frame never spans such a pause, so whatever the noise before it,
// a frame that follows a pause of the line is found.
//
// What this cannot do without a checksum: noise that is not followed by a pause
// can claim a length that runs over the real frames after it and still decode
// (several message types carry arbitrary octets), and a frame that lost an octet
// can borrow the first octets of the next; those frames are lost (and the noise
// delivered as a message) until the line next pauses. Senders that write frame by
// frame pause between frames often enough; TestDeframeNoiseAdjacent records the
// cost when they do not.
//
// # Addresses
//
// The engine keys clients by netip.AddrPort; a serial line is given a synthetic one,
// [LineAddr](Options.Index) = [100::i+1]:i+1, in 100::/64, the IPv6 discard-only
// prefix (RFC 6666) that no real UDP peer can send from. Every frame received is
// reported from it, and SendBatch accepts only it (others: serve.ErrNoRoute);
// Reaches is true for that address alone, so a joined server never sends a UDP
// peer's datagram to the line. One client speaks on a line directly; several behind
// one line (a radio gateway or modem) use the forwarder encapsulation, which the
// engine unwraps and answers in kind. To have ADVERTISE sent on the line, add
// [Bind.Addr] to serve.Options.Broadcast.
//
// # Goroutines and buffers
//
// A tty read cannot be interrupted portably, so a reader goroutine moves what the
// line receives into the deframer's buffer and ReceiveBatch waits on it, with the
// seam's deadline semantics (a past SetReadDeadline from any goroutine interrupts it
// with an error whose Timeout is true; after Close it returns net.ErrClosed). Frames
// are copied straight from that buffer into the caller's packets; when the loop does
// not take them, the reader stops reading and the line's own buffers fill. A writer
// goroutine drains a transmit ring that SendBatch copies each datagram into whole;
// when the ring stays full for Options.WriteTimeout the datagram is refused with
// serve.ErrTxQueueFull, so the line never carries half a frame because it was busy.
// Nothing is allocated per frame in either direction.
package serial
