// Package packet is the MQTT-SN v1.2 wire format: decoding every message type into a
// Packet view, appending encoders, and the forwarder encapsulation (0xFE).
//
// It owns bytes only. It knows nothing of sessions, topics or time: whether a
// well-formed CONNECT is acceptable is the broker's decision; whether a datagram is a
// well-formed CONNECT is this package's.
//
// Decoding never allocates and never panics: a Packet's byte slices alias the datagram
// it was decoded from, and a malformed datagram yields an *Error naming the message type
// and what is wrong (see Reason), so drivers can count drops by reason.
//
// Encoding appends to a caller-owned slice, so a hot path that reuses its buffers
// encodes without allocating.
package packet
