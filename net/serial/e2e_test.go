package serial

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/net/serve"
	"github.com/musqratt/musqratt/net/udp"
)

// rawClient speaks raw MQTT-SN frames over one transport.
type rawClient struct {
	name  string
	send  func([]byte)
	in    chan []byte
	msgID uint16
}

func (c *rawClient) sendPacket(p packet.Packet) { c.send(packet.Append(nil, &p)) }

// expect waits for a message of type typ, answering the broker's REGISTERs on the way.
func (c *rawClient) expect(t *testing.T, typ packet.Type) packet.Packet {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case b := <-c.in:
			var p packet.Packet
			if err := packet.Decode(b, &p); err != nil {
				t.Fatalf("%s: % x: %v", c.name, b, err)
			}
			if p.Type == typ {
				return p
			}
			if p.Type == packet.REGISTER {
				c.sendPacket(packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
				continue
			}
			t.Fatalf("%s: got %v, want %v", c.name, p.Type, typ)
		case <-timeout:
			t.Fatalf("%s: no %v", c.name, typ)
		}
	}
}

func (c *rawClient) connect(t *testing.T) {
	t.Helper()
	c.sendPacket(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte(c.name)})
	if p := c.expect(t, packet.CONNACK); p.ReturnCode != packet.Accepted {
		t.Fatalf("%s: CONNACK %v", c.name, p.ReturnCode)
	}
}

func (c *rawClient) nextID() uint16 { c.msgID++; return c.msgID }

func (c *rawClient) subscribe(t *testing.T, topic string) {
	t.Helper()
	c.sendPacket(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(packet.QoS2), MsgID: c.nextID(), TopicName: []byte(topic)})
	if p := c.expect(t, packet.SUBACK); p.ReturnCode != packet.Accepted {
		t.Fatalf("%s: SUBACK %v", c.name, p.ReturnCode)
	}
}

func (c *rawClient) register(t *testing.T, topic string) uint16 {
	t.Helper()
	c.sendPacket(packet.Packet{Type: packet.REGISTER, MsgID: c.nextID(), TopicName: []byte(topic)})
	p := c.expect(t, packet.REGACK)
	if p.ReturnCode != packet.Accepted {
		t.Fatalf("%s: REGACK %v", c.name, p.ReturnCode)
	}
	return p.TopicID
}

// publish sends data at qos and completes the publisher's side of the flow.
func (c *rawClient) publish(t *testing.T, topicID uint16, qos packet.QoS, data string) {
	t.Helper()
	id := uint16(0)
	if qos > 0 {
		id = c.nextID()
	}
	c.sendPacket(packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(qos), TopicID: topicID, MsgID: id, Data: []byte(data)})
	switch qos {
	case packet.QoS1:
		if p := c.expect(t, packet.PUBACK); p.MsgID != id || p.ReturnCode != packet.Accepted {
			t.Fatalf("%s: PUBACK %+v", c.name, p)
		}
	case packet.QoS2:
		c.expect(t, packet.PUBREC)
		c.sendPacket(packet.Packet{Type: packet.PUBREL, MsgID: id})
		c.expect(t, packet.PUBCOMP)
	}
}

// receive waits for a delivery of data at qos and completes the subscriber's side.
func (c *rawClient) receive(t *testing.T, qos packet.QoS, data string) {
	t.Helper()
	p := c.expect(t, packet.PUBLISH)
	if string(p.Data) != data || p.Flags.QoS() != qos {
		t.Fatalf("%s: PUBLISH %q QoS %d, want %q QoS %d", c.name, p.Data, p.Flags.QoS(), data, qos)
	}
	switch qos {
	case packet.QoS1:
		c.sendPacket(packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
	case packet.QoS2:
		id := p.MsgID
		c.sendPacket(packet.Packet{Type: packet.PUBREC, MsgID: id})
		c.expect(t, packet.PUBREL)
		c.sendPacket(packet.Packet{Type: packet.PUBCOMP, MsgID: id})
	}
}

// serialClient speaks on the far end of a line: frames out whole, frames in through
// a Deframer of its own.
func serialClient(t *testing.T, name string, line io.ReadWriter) *rawClient {
	c := &rawClient{name: name, in: make(chan []byte, 64)}
	c.send = func(b []byte) {
		if _, err := line.Write(b); err != nil {
			t.Errorf("%s: write: %v", name, err)
		}
	}
	go func() {
		d := NewDeframer(0)
		for {
			sp := d.Space()
			n, err := line.Read(sp)
			d.Wrote(n)
			for f := d.Next(); f != nil; f = d.Next() {
				c.in <- bytes.Clone(f)
			}
			if err != nil {
				close(c.in)
				return
			}
		}
	}()
	return c
}

func udpClient(t *testing.T, name string, to netip.AddrPort) *rawClient {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{name: name, in: make(chan []byte, 64)}
	c.send = func(b []byte) { conn.WriteToUDPAddrPort(b, to) }
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				close(c.in)
				return
			}
			c.in <- bytes.Clone(buf[:n])
		}
	}()
	return c
}

// serveBoth runs the real engine over a UDP bind joined with the serial Bind.
func serveBoth(t *testing.T, sb *Bind) netip.AddrPort {
	t.Helper()
	eng, err := broker.New(broker.Config{AdvertiseInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ub, err := udp.NewBind(uc, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.NewBind(eng, serve.Options{Logger: slog.New(slog.DiscardHandler)}, ub, sb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		uc.Close()
	})
	return uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// exchange runs publish/subscribe at QoS 0, 1 and 2 in both directions between a
// client on the serial line and one on UDP.
func exchange(t *testing.T, s, u *rawClient) {
	s.connect(t)
	u.connect(t)
	s.subscribe(t, "to/serial")
	u.subscribe(t, "to/udp")
	toSerial := u.register(t, "to/serial")
	toUDP := s.register(t, "to/udp")
	for _, qos := range []packet.QoS{packet.QoS0, packet.QoS1, packet.QoS2} {
		for i := range 3 {
			msg := fmt.Sprintf("udp->serial q%d #%d", qos, i)
			u.publish(t, toSerial, qos, msg)
			s.receive(t, qos, msg)
			msg = fmt.Sprintf("serial->udp q%d #%d", qos, i)
			s.publish(t, toUDP, qos, msg)
			u.receive(t, qos, msg)
		}
	}
	// A large message crosses in the 3-octet Length form.
	big := string(bytes.Repeat([]byte("x"), 600))
	u.publish(t, toSerial, packet.QoS1, big)
	s.receive(t, packet.QoS1, big)
	s.publish(t, toUDP, packet.QoS1, big)
	u.receive(t, packet.QoS1, big)
}

// The real broker engine serves a client on a serial line (an in-process pipe) and
// one on UDP through one loop: messages at QoS 0, 1 and 2 cross both ways.
func TestEndToEndPipe(t *testing.T) {
	a, peer := pipePair()
	sb, err := New(a, "pipe", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		peer.Close()
		sb.Close()
	})
	to := serveBoth(t, sb)
	exchange(t, serialClient(t, "serial", peer), udpClient(t, "udp", to))
	if s := sb.Stats(); s.Skipped != 0 || s.TxQueueFull != 0 {
		t.Errorf("serial stats %+v", s)
	}
}
