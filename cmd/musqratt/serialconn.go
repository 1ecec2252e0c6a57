package main

import (
	"net"
	"sync"
	"time"

	"github.com/musqratt/musqratt/net/serial"
	"github.com/musqratt/musqratt/net/serve"
)

// serialConn is a net.Conn over a serial line (pub and sub --serial): each Read is
// one MQTT-SN message cut from the line by its Length field, each Write one message
// queued for the line whole, as the daemon's serial_listen frames them. It adapts
// the broker's side of net/serial (a serve.Bind) to what broker/client reads and
// writes: a UDP-like connected datagram socket.
type serialConn struct {
	b    *serial.Bind
	addr serialAddr

	rmu sync.Mutex // one Read at a time (the Bind's receive side is single-goroutine)
	rx  [1]serve.Packet
	wmu sync.Mutex // one Write at a time (likewise its send side)
	tx  [1]serve.Packet
	txn uint64 // octets queued by Write
}

var _ net.Conn = (*serialConn)(nil)

// dialSerial opens device at baud as a client's line to the gateway.
func dialSerial(device string, baud int) (*serialConn, error) {
	b, err := serial.Open(device, baud, serial.Options{})
	if err != nil {
		return nil, err
	}
	return &serialConn{b: b, addr: serialAddr(device)}, nil
}

// Read waits for the next frame; a frame longer than p is cut, as a UDP read is.
func (c *serialConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rx[0] = serve.Packet{Buf: p}
	for {
		n, err := c.b.ReceiveBatch(c.rx[:])
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return c.rx[0].N, nil
		}
	}
}

// Write queues p (one MQTT-SN message) for the line.
func (c *serialConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.tx[0] = serve.Packet{Buf: p, Addr: c.b.Addr()}
	if _, err := c.b.SendBatch(c.tx[:]); err != nil {
		return 0, err
	}
	c.txn += uint64(len(p))
	return len(p), nil
}

// drainTimeout bounds how long Close waits for queued messages to reach the line.
const drainTimeout = time.Second

// Close closes the line once what Write queued is written (the Bind's Close drops
// its transmit queue; a QoS -1 publish or a last DISCONNECT ack would be lost), or
// after drainTimeout.
func (c *serialConn) Close() error {
	c.wmu.Lock()
	want := c.txn
	c.wmu.Unlock()
	for end := time.Now().Add(drainTimeout); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if st := c.b.Stats(); st.TxOctets >= want || st.TxErrors > 0 {
			break
		}
	}
	return c.b.Close()
}

func (c *serialConn) LocalAddr() net.Addr  { return c.addr }
func (c *serialConn) RemoteAddr() net.Addr { return c.addr }

// SetDeadline sets the read deadline; a write waits at most the Bind's write timeout
// for room on the line anyway.
func (c *serialConn) SetDeadline(t time.Time) error      { return c.b.SetReadDeadline(t) }
func (c *serialConn) SetReadDeadline(t time.Time) error  { return c.b.SetReadDeadline(t) }
func (c *serialConn) SetWriteDeadline(t time.Time) error { return nil }

// serialAddr is a serial line's address: its device path.
type serialAddr string

func (a serialAddr) Network() string { return "serial" }
func (a serialAddr) String() string  { return string(a) }
