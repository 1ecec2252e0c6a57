package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/kernel"
)

// startBroker serves a MusQraTT engine on a loopback UDP port for the test's lifetime,
// with pre-defined topic 7 = "pre/seven" and a 1 s retry interval.
func startBroker(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := kernel.Default()
	cfg.Broadcast = nil
	cfg.Broker.Predefined = map[uint16]string{7: "pre/seven"}
	cfg.Broker.RetryInterval = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kernel.Run(ctx, cfg, pc, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
		pc.Close()
	})
	return pc.LocalAddr().String()
}

// inbox collects the messages a client receives.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Message
	more chan struct{}
}

func newInbox() *inbox { return &inbox{more: make(chan struct{}, 1000)} }

func (b *inbox) add(m client.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.more <- struct{}{}
}

// wait returns once n messages have arrived, or fails the test.
func (b *inbox) wait(t *testing.T, n int) []client.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		b.mu.Lock()
		if len(b.msgs) >= n {
			m := append([]client.Message(nil), b.msgs...)
			b.mu.Unlock()
			return m
		}
		b.mu.Unlock()
		select {
		case <-b.more:
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("got %d messages, want %d: %+v", len(b.msgs), n, b.msgs)
		}
	}
}

func dial(t *testing.T, addr, id string, mod func(*client.Config)) (*client.Client, *inbox) {
	t.Helper()
	in := newInbox()
	cfg := client.Config{ClientID: id, OnMessage: in.add, RetryInterval: 500 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, in
}

func TestPublishSubscribeEveryQoSAndTopicKind(t *testing.T) {
	addr := startBroker(t)
	ctx := context.Background()
	sub, in := dial(t, addr, "sub", nil)
	pub, _ := dial(t, addr, "pub", nil)

	for _, s := range []struct {
		topic client.Topic
		qos   packet.QoS
	}{
		{client.Name("a/+/c"), 2},
		{client.Predefined(7), 1},
		{client.Short("zz"), 0},
	} {
		if g, _, err := sub.Subscribe(ctx, s.topic, s.qos); err != nil || g != s.qos {
			t.Fatalf("subscribe %v: granted %d, %v", s.topic, g, err)
		}
	}
	sends := []struct {
		topic client.Topic
		qos   packet.QoS
		want  string
	}{
		{client.Name("a/b/c"), 0, "a/b/c"},
		{client.Name("a/b/c"), 1, "a/b/c"},
		{client.Name("a/x/c"), 2, "a/x/c"},
		{client.Predefined(7), 2, ""},
		{client.Auto("zz"), 1, "zz"},
	}
	for i, s := range sends {
		if err := pub.Publish(ctx, s.topic, []byte(fmt.Sprint(i)), s.qos, false); err != nil {
			t.Fatalf("publish %v QoS %d: %v", s.topic, s.qos, err)
		}
	}
	got := in.wait(t, len(sends))
	for i, s := range sends {
		m := got[i]
		if string(m.Payload) != fmt.Sprint(i) || m.Topic != s.want {
			t.Errorf("message %d: topic %q payload %q, want %q %q", i, m.Topic, m.Payload, s.want, fmt.Sprint(i))
		}
	}
	if m := got[3]; m.TopicType != packet.TopicPredefined || m.TopicID != 7 || m.QoS != 1 {
		t.Errorf("pre-defined delivery: %+v (granted QoS 1 caps QoS 2)", m)
	}
	if m := got[4]; m.TopicType != packet.TopicShort || m.QoS != 0 {
		t.Errorf("short-name delivery: %+v", m)
	}
	if err := sub.Unsubscribe(ctx, client.Name("a/+/c")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, client.Name("a/b/c"), []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, client.Short("zz"), []byte("last"), 1, false); err != nil {
		t.Fatal(err)
	}
	if got := in.wait(t, len(sends)+1); string(got[len(sends)].Payload) != "last" {
		t.Errorf("after unsubscribe got %q", got[len(sends)].Payload)
	}
	if err := pub.Disconnect(ctx); err != nil {
		t.Errorf("disconnect: %v", err)
	}
}

func TestRetainedAndQoSMinus1(t *testing.T) {
	addr := startBroker(t)
	ctx := context.Background()
	pub, _ := dial(t, addr, "pub", nil)
	if err := pub.Publish(ctx, client.Name("keep/me"), []byte("kept"), 1, true); err != nil {
		t.Fatal(err)
	}
	sub, in := dial(t, addr, "sub", nil)
	if _, _, err := sub.Subscribe(ctx, client.Name("keep/#"), 1); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 1)[0]; !m.Retain || string(m.Payload) != "kept" || m.Topic != "keep/me" {
		t.Errorf("retained: %+v", m)
	}
	if _, _, err := sub.Subscribe(ctx, client.Predefined(7), 0); err != nil {
		t.Fatal(err)
	}
	ua, _ := net.ResolveUDPAddr("udp", addr)
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := client.PublishQoSMinus1(conn, client.Predefined(7), []byte("m1"), false); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 2)[1]; string(m.Payload) != "m1" || m.TopicID != 7 {
		t.Errorf("QoS -1: %+v", m)
	}
	if err := client.PublishQoSMinus1(conn, client.Name("x/y"), nil, false); err == nil {
		t.Error("QoS -1 to a topic name: no error")
	}
}

func TestWillOnLostConnection(t *testing.T) {
	addr := startBroker(t)
	ctx := context.Background()
	sub, in := dial(t, addr, "watcher", nil)
	if _, _, err := sub.Subscribe(ctx, client.Name("wills/#"), 1); err != nil {
		t.Fatal(err)
	}
	// Keep-alive 1 s: the broker declares the client lost after 1.5 s of silence.
	dying, _ := dial(t, addr, "dying", func(c *client.Config) {
		c.KeepAlive = time.Second
		c.Will = &client.Will{Topic: "wills/dying", Payload: []byte("gone"), QoS: 1}
	})
	if err := dying.UpdateWill(ctx, &client.Will{Topic: "wills/dying", Payload: []byte("gone for good"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	dying.Close() // no DISCONNECT: the will must be published
	m := in.wait(t, 1)[0]
	if m.Topic != "wills/dying" || string(m.Payload) != "gone for good" {
		t.Errorf("will: %+v", m)
	}
}

func TestSleepBuffersUntilWake(t *testing.T) {
	addr := startBroker(t)
	ctx := context.Background()
	sleeper, in := dial(t, addr, "sleeper", func(c *client.Config) { c.Persistent = true })
	if _, _, err := sleeper.Subscribe(ctx, client.Name("s/t"), 1); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pub, _ := dial(t, addr, "pub", nil)
	for i := range 3 {
		if err := pub.Publish(ctx, client.Name("s/t"), []byte{byte('a' + i)}, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	in.mu.Lock()
	early := len(in.msgs)
	in.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d messages delivered to a sleeping client", early)
	}
	if err := sleeper.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, m := range in.wait(t, 3) {
		got = append(got, m.Payload...)
	}
	if !bytes.Equal(got, []byte("abc")) {
		t.Errorf("after wake: %q", got)
	}
}

func TestRejectionsAndTimeouts(t *testing.T) {
	addr := startBroker(t)
	ctx := context.Background()
	c, _ := dial(t, addr, "c", nil)
	err := c.Publish(ctx, client.Predefined(99), []byte("x"), 1, false)
	var rej *client.RejectedError
	if !errors.As(err, &rej) || rej.Code != packet.InvalidTopicID {
		t.Errorf("publish to an unknown pre-defined id: %v", err)
	}
	if err := c.Publish(ctx, client.Name("a/+"), nil, 0, false); err == nil {
		t.Error("publish to a filter: no error")
	}
	if _, _, err := c.Subscribe(ctx, client.Name("a/#/b"), 0); err == nil {
		t.Error("subscribe to a malformed filter: no error")
	}
	if _, err := client.Dial(ctx, addr, client.Config{ClientID: "this-client-id-is-far-too-long"}); err == nil {
		t.Error("24-octet client id: no error")
	}

	// Nobody listens here: Dial gives up after its retries with ErrTimeout.
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_, err = client.Dial(ctx, silent.LocalAddr().String(), client.Config{ClientID: "x", RetryInterval: 50 * time.Millisecond, Retries: 2})
	if !errors.Is(err, client.ErrTimeout) {
		t.Errorf("dial a silent address: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dial took %v with 3 tries 50 ms apart", d)
	}
}

// The broker's QoS 2 delivery resent (its PUBREC lost) reaches the handler once.
func TestQoS2DuplicateDeliveredOnce(t *testing.T) {
	gw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	in := newInbox()
	errc := make(chan error, 1)
	var c *client.Client
	go func() {
		var err error
		c, err = client.Dial(context.Background(), gw.LocalAddr().String(), client.Config{ClientID: "q2", OnMessage: in.add})
		errc <- err
	}()
	buf := make([]byte, 512)
	read := func() (packet.Packet, *net.UDPAddr) {
		gw.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, from, err := gw.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		var p packet.Packet
		if err := packet.Decode(buf[:n], &p); err != nil {
			t.Fatal(err)
		}
		return p, from
	}
	p, from := read()
	if p.Type != packet.CONNECT || !p.Flags.CleanSession() || string(p.ClientID) != "q2" {
		t.Fatalf("first datagram %+v", p)
	}
	write := func(p *packet.Packet) { gw.WriteToUDP(packet.Append(nil, p), from) }
	write(&packet.Packet{Type: packet.CONNACK})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pub := packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(2).WithTopicIDType(packet.TopicShort), TopicID: 'a'<<8 | 'b', MsgID: 9, Data: []byte("once")}
	write(&pub)
	pub.Flags |= packet.FlagDUP
	write(&pub)
	for range 2 {
		if p, _ := read(); p.Type != packet.PUBREC || p.MsgID != 9 {
			t.Fatalf("want PUBREC 9, got %+v", p)
		}
	}
	write(&packet.Packet{Type: packet.PUBREL, MsgID: 9})
	if p, _ := read(); p.Type != packet.PUBCOMP || p.MsgID != 9 {
		t.Fatalf("want PUBCOMP 9, got %+v", p)
	}
	if m := in.wait(t, 1); len(m) != 1 || m[0].Topic != "ab" || string(m[0].Payload) != "once" {
		t.Errorf("delivered %+v", m)
	}
	// A copy of the completed message that the network duplicated and delayed: answered,
	// not delivered again.
	write(&pub)
	if p, _ := read(); p.Type != packet.PUBREC || p.MsgID != 9 {
		t.Fatalf("stray copy: want PUBREC 9, got %+v", p)
	}
	// A new message with the same id after PUBCOMP is a new message.
	pub.Flags &^= packet.FlagDUP
	pub.Data = []byte("again")
	write(&pub)
	if m := in.wait(t, 2); string(m[1].Payload) != "again" {
		t.Errorf("second delivery %q, want the new message (the stray copy delivered?)", m[1].Payload)
	}
}
