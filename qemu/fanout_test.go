package qemu

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// The fan-out tests are the regression test for the silent loss below the loop: with
// gVisor's channel endpoint (an outgoing queue of 256 that discards past it with no
// error) a QoS 1 publish to 300 subscribers reached 257 and its PUBACK never came
// back, while the broker counted every datagram as sent. Each test boots an image,
// connects fanoutSubscribers raw MQTT-SN subscribers on one short topic at QoS 1, sends
// one QoS 1 publish, and requires every delivery and the PUBACK to arrive, and the
// console's dump to show no datagram dropped below the loop.
func TestMX6ULLEVKFanOut(t *testing.T) { testFanOut(t, MX6ULLEVK) }

func TestUSBArmoryFanOut(t *testing.T) { testFanOut(t, USBArmory) }

func TestMicrovmFanOut(t *testing.T) { testFanOut(t, Microvm) }

const (
	fanoutSubscribers = 1000
	fanoutTopic       = "fo" // a short topic name: no REGISTER needed
)

// fanoutSub is one raw subscriber socket.
type fanoutSub struct {
	c   *net.UDPConn
	buf []byte
}

// exchange sends p and waits for a reply of type want, resending on silence.
func (s *fanoutSub) exchange(p *packet.Packet, want packet.Type) error {
	b := packet.Append(nil, p)
	var got packet.Packet
	for try := 0; try < 20; try++ {
		if _, err := s.c.Write(b); err != nil {
			return err
		}
		s.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for {
			n, err := s.c.Read(s.buf)
			if err != nil {
				break // timeout: resend
			}
			got.Reset()
			if packet.Decode(s.buf[:n], &got) == nil && got.Type == want {
				return nil
			}
		}
	}
	return fmt.Errorf("no %v after 20 tries", want)
}

func testFanOut(t *testing.T, m Machine) {
	// The i.MX6 consoles answer "stats"; the microvm's console is output only, so it
	// dumps every 2 s instead.
	every := "0"
	if m.Board == Microvm.Board {
		every = "2s"
	}
	in := bootImage(t, m, "-X", "main.DumpEvery="+every)
	addr := net.UDPAddrFromAddrPort(in.Addr)
	topicID := uint16(fanoutTopic[0])<<8 | uint16(fanoutTopic[1])

	// Connect and subscribe, a few at a time (QEMU's user network is one host thread).
	subs := make([]*fanoutSub, fanoutSubscribers)
	var wg sync.WaitGroup
	errs := make(chan error, fanoutSubscribers)
	sem := make(chan struct{}, 16)
	t0 := time.Now()
	for i := range subs {
		c, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadBuffer(1 << 16)
		subs[i] = &fanoutSub{c: c, buf: make([]byte, 512)}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, s *fanoutSub) {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("fan-%04d", i)
			if err := s.exchange(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession,
				ProtocolID: packet.ProtocolID, Duration: 600, ClientID: []byte(id)}, packet.CONNACK); err != nil {
				errs <- fmt.Errorf("%s connect: %v", id, err)
				return
			}
			if err := s.exchange(&packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(packet.QoS1).WithTopicIDType(packet.TopicShort),
				MsgID: 1, TopicID: topicID}, packet.SUBACK); err != nil {
				errs <- fmt.Errorf("%s subscribe: %v", id, err)
			}
		}(i, subs[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d subscribers connected and subscribed in %v", fanoutSubscribers, time.Since(t0).Round(time.Millisecond))

	// Every subscriber waits for its delivery (and acknowledges it, as a client would).
	payload := []byte("fan-out burst")
	var got sync.WaitGroup
	var mu sync.Mutex
	received, dups := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range subs {
		got.Add(1)
		go func(s *fanoutSub) {
			defer got.Done()
			seen := false
			var p packet.Packet
			s.c.SetReadDeadline(deadline)
			for {
				n, err := s.c.Read(s.buf)
				if err != nil {
					return
				}
				p.Reset()
				if packet.Decode(s.buf[:n], &p) != nil || p.Type != packet.PUBLISH || string(p.Data) != string(payload) {
					continue
				}
				s.c.Write(packet.Append(nil, &packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID}))
				mu.Lock()
				if seen {
					dups++ // a retransmission of one whose PUBACK was slow: allowed
				} else {
					received++
				}
				done := received == fanoutSubscribers
				mu.Unlock()
				seen = true
				if done {
					for _, o := range subs {
						o.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					}
				}
			}
		}(s)
	}

	pub := &fanoutSub{buf: make([]byte, 512)}
	var err error
	if pub.c, err = net.DialUDP("udp", nil, addr); err != nil {
		t.Fatal(err)
	}
	defer pub.c.Close()
	if err := pub.exchange(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession,
		ProtocolID: packet.ProtocolID, Duration: 600, ClientID: []byte("fan-pub")}, packet.CONNACK); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t1 := time.Now()
	if err := pub.exchange(&packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(packet.QoS1).WithTopicIDType(packet.TopicShort),
		TopicID: topicID, MsgID: 7, Data: payload}, packet.PUBACK); err != nil {
		t.Errorf("publisher: %v", err)
	}
	puback := time.Since(t1)
	got.Wait()
	t.Logf("%d of %d subscribers received the publish (%d retransmissions); PUBACK after %v, all delivered after %v",
		received, fanoutSubscribers, dups, puback.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	if received != fanoutSubscribers {
		t.Errorf("%d of %d subscribers received the publish", received, fanoutSubscribers)
	}

	// Below the loop nothing was dropped, and the loop sent what it said.
	dump := consoleDump(t, in, m)
	for _, line := range strings.Split(dump, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (strings.HasPrefix(f[0], "link_tx_dropped_total") || strings.HasPrefix(f[0], "not_sent_total") || f[0] == "write_errors_total") && f[1] != "0" {
			t.Errorf("dropped below the loop: %s", line)
		}
		if len(f) == 2 && (strings.HasPrefix(f[0], "link_") || strings.HasPrefix(f[0], "udp_") || strings.HasPrefix(f[0], "datagrams_") || f[0] == `messages_received_total{type="PUBACK"}` || f[0] == "retransmissions_total" || f[0] == "write_errors_total" || f[0] == "heap_objects" || f[0] == "gc_cycles_total") {
			t.Logf("console: %s", strings.Join(f, " "))
		}
	}
}

// consoleDump asks the console for the metrics dump and returns the first one printed
// from now on (the microvm ignores the command and prints its periodic one).
func consoleDump(t *testing.T, in *Instance, m Machine) string {
	t.Helper()
	before := len(in.Console())
	if err := in.Send("stats"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := in.Console()
		if i := strings.Index(c[before:], "histogram (µs)"); i >= 0 {
			return c[before : before+i]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: no metrics dump on the console within 10 s of 'stats'", m.Board)
	return ""
}
