package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
)

// fakeGateway answers CONNECT with CONNACK and each SUBSCRIBE with its SUBACK (topic id
// 100+MsgID) immediately followed by a retained PUBLISH on that id, in two datagrams
// back to back: what a broker does for a retained message on an exact topic.
func fakeGateway(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var p packet.Packet
			if packet.Decode(buf[:n], &p) != nil {
				continue
			}
			send := func(q packet.Packet) { pc.WriteToUDPAddrPort(packet.Append(nil, &q), from) }
			switch p.Type {
			case packet.CONNECT:
				send(packet.Packet{Type: packet.CONNACK, ReturnCode: packet.Accepted})
			case packet.SUBSCRIBE:
				id := 100 + p.MsgID
				send(packet.Packet{Type: packet.SUBACK, TopicID: id, MsgID: p.MsgID, ReturnCode: packet.Accepted})
				send(packet.Packet{Type: packet.PUBLISH, Flags: packet.FlagRetain, TopicID: id, Data: []byte("closed")})
			case packet.DISCONNECT:
				send(packet.Packet{Type: packet.DISCONNECT})
			}
		}
	}()
	return pc.LocalAddr().String()
}

// A message on the topic id a SUBACK has just given is delivered with its name, even
// when it arrives before Subscribe has returned (issue 15: `sub -v` printed "26 closed").
func TestSubscribeLearnsTheIDBeforeTheRetainedMessage(t *testing.T) {
	addr := fakeGateway(t)
	msgs := make(chan client.Message, 100)
	c, err := client.Dial(context.Background(), addr, client.Config{ClientID: "names", OnMessage: func(m client.Message) { msgs <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 30 {
		name := "state/door" + string(rune('a'+i%26)) + "/" + string(rune('0'+i/26))
		if _, _, err := c.Subscribe(context.Background(), client.Name(name), 0); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-msgs:
			if m.Topic != name {
				t.Fatalf("subscription %d: message on id %d delivered with topic %q, want %q", i, m.TopicID, m.Topic, name)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no retained message")
		}
	}
}

func TestTopicChecks(t *testing.T) {
	for _, tc := range []struct {
		t        client.Topic
		pub, sub bool // valid for
	}{
		{client.Name("a/b"), true, true},
		{client.Name("a/+"), false, true},
		{client.Name("a/#"), false, true},
		{client.Name("a/#/b"), false, false},
		{client.Name("a+/b"), false, false},
		{client.Name(""), false, false},
		{client.Short("ab"), true, true},
		{client.Predefined(0), false, false},
		{client.Predefined(7), true, true},
	} {
		if err := tc.t.CheckPublish(); (err == nil) != tc.pub {
			t.Errorf("%v: CheckPublish: %v", tc.t, err)
		}
		if err := tc.t.CheckSubscribe(); (err == nil) != tc.sub {
			t.Errorf("%v: CheckSubscribe: %v", tc.t, err)
		}
	}
}
