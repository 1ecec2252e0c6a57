// Package brokertest holds test doubles for the broker engine: a fake clock, a simulated
// datagram network (Net) that owns a Broker and scripted Clients at IPv4, IPv6 and
// forwarder-encapsulated addresses, optional seeded loss, duplication and reordering, and a
// transcript runner for golden tests.
//
// Nothing here sleeps or starts a goroutine: Net delivers datagrams synchronously, in
// order (unless told to reorder), and advances virtual time from one Deadline to the next,
// calling Tick, so a test of a 15-minute keep-alive runs in microseconds and the same
// seed always produces the same run.
//
// A Client is scripted by default: what the broker sends it lands in its inbox, and the
// test consumes it with Expect. With Auto set it also behaves as a conforming MQTT-SN
// client would — acknowledging deliveries (QoS 2 deduplicated by message id), answering
// REGISTER and PINGREQ, and retransmitting its own PUBLISH and PUBREL after a retry
// interval with DUP set — which is what the loss and duplication tests need.
//
// It plays the role wireguard-go's conn/bindtest plays for its device: a sibling package
// that tests import, never the broker itself.
package brokertest
