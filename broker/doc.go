// Package broker is the MQTT-SN v1.2 broker engine: sessions (active, asleep, awake,
// disconnected, lost), topic registration, subscriptions, QoS -1 to 2, retained
// messages, wills, sleeping clients, discovery and forwarder encapsulation.
//
// It is sans-IO. The engine never opens a socket, reads a clock, logs or starts a
// goroutine: a driver (net/serve) hands it each received datagram with the current time
// (Receive), calls Tick when Deadline says timers are due, and sends what comes back.
// The same engine therefore runs over Linux sockets, over gVisor on a board, and inside
// tests with a fake clock and a simulated lossy network.
//
// A Broker is not safe for concurrent use, except Stats, which may be called from any
// goroutine. Outbound datagram buffers belong to the broker and stay valid only until
// the next call to Receive or Tick.
package broker
