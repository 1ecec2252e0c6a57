package bridge

import (
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// fakeUpstream is a minimal MQTT 3.1.1 server on loopback that the test drives packet
// by packet, to decide exactly when (and whether) a PUBLISH is acknowledged.
type fakeUpstream struct {
	t  *testing.T
	ln net.Listener
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeUpstream{t: t, ln: ln}
}

func (f *fakeUpstream) url() string { return "tcp://" + f.ln.Addr().String() }

// accept takes the next connection and answers its CONNECT.
func (f *fakeUpstream) accept(sessionPresent bool) net.Conn {
	f.t.Helper()
	f.ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := f.ln.Accept()
	if err != nil {
		f.t.Fatal("no connection from the bridge:", err)
	}
	f.t.Cleanup(func() { c.Close() })
	if p := f.read(c); p == nil {
		f.t.Fatal("no CONNECT")
	} else if _, ok := p.(*packets.ConnectPacket); !ok {
		f.t.Fatalf("want CONNECT, got %v", p)
	}
	ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	ack.SessionPresent = sessionPresent
	if err := ack.Write(c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// read returns the next packet other than PINGREQ (answered), or nil on error.
func (f *fakeUpstream) read(c net.Conn) packets.ControlPacket {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		p, err := packets.ReadPacket(c)
		if err != nil {
			return nil
		}
		if _, ok := p.(*packets.PingreqPacket); ok {
			packets.NewControlPacket(packets.Pingresp).Write(c)
			continue
		}
		return p
	}
}

func (f *fakeUpstream) readPublish(c net.Conn) *packets.PublishPacket {
	f.t.Helper()
	p := f.read(c)
	pub, ok := p.(*packets.PublishPacket)
	if !ok {
		f.t.Fatalf("want PUBLISH, got %v", p)
	}
	return pub
}

// A QoS 1 publication written to a connection that then drops, and resent by paho on
// the next one, stays in the bridge's queue (and is not counted forwarded) until a
// PUBACK for it really arrives. paho v1.5.1 completes the first token with no error
// when it resends the stored message after the reconnect, before any acknowledgement;
// a bridge trusting that token drops the message from its queue unacknowledged.
func TestQoS1StaysQueuedUntilReallyAcked(t *testing.T) {
	f := newFakeUpstream(t)
	b := newBridge(t, "address "+f.url(), "client_id edge-1", "out data/# 1", "retry_min 100ms", "retry_max 200ms")
	done := make(chan struct{})
	go func() {
		defer close(done)
		c1 := f.accept(false)
		pub := f.readPublish(c1)
		if string(pub.Payload) != "m1" || pub.Qos != 1 {
			t.Errorf("first connection: got %v", pub)
		}
		c1.Close() // no PUBACK: the connection is gone
		c2 := f.accept(true)
		again := f.readPublish(c2)
		if string(again.Payload) != "m1" {
			t.Errorf("second connection: got %v", again)
		}
		// Hold the acknowledgement: the bridge must still have it queued.
		time.Sleep(500 * time.Millisecond)
		if s := b.Stats(); s.Queued != 1 || s.Forwarded != 0 {
			t.Errorf("before any PUBACK: %d queued, %d forwarded; want 1 queued, 0 forwarded", s.Queued, s.Forwarded)
		}
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = again.MessageID
		if err := ack.Write(c2); err != nil {
			t.Error(err)
			return
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if s := b.Stats(); s.Queued == 0 && s.Forwarded == 1 {
				break
			} else if time.Now().After(deadline) {
				t.Errorf("after the PUBACK: %+v; want 0 queued, 1 forwarded", s)
				break
			}
		}
		// Keep the connection served (pings) until the bridge is stopped.
		go func() {
			for f.read(c2) != nil {
			}
		}()
	}()
	b.Forward("data/x", []byte("m1"), 1, false)
	runBridge(t, b, func(string, []byte, int8, bool) bool { return true })
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("fake upstream did not finish")
	}
}
