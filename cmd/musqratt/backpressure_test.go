package main

import (
	"flag"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

var backpressurePolicy = flag.String("backpressure.policy", "block", "queue_full_policy in TestReliabilityBackpressure (drop shows the loss it prevents)")

// TestReliabilityBackpressure: the real daemon (defaults) over loopback, a publisher
// keeping 16 QoS 1 PUBLISHes unacknowledged for 3 s, one QoS 1 subscriber acknowledging
// each delivery as it reads it. Every PUBACK "accepted" must be followed by a
// delivery (docs/reliability.md, "Back-pressure"); with queue_full_policy drop this
// case lost 90% of what was acknowledged.
func TestReliabilityBackpressure(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	bin := daemonBinary(t)
	conf := writeConf(t, "sys_interval off\nqueue_full_policy "+*backpressurePolicy+"\n")
	d := startDaemon(t, bin, conf, "127.0.0.1:0")
	defer d.stop()
	brokerAddr, _ := net.ResolveUDPAddr("udp", "127.0.0.1:"+d.port)

	dial := func(id string) *net.UDPConn {
		c, err := net.DialUDP("udp", nil, brokerAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write(packet.Append(nil, &packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 600, ClientID: []byte(id)}))
		if p := readPacket(t, c, 2*time.Second); p.Type != packet.CONNACK || p.ReturnCode != packet.Accepted {
			t.Fatalf("%s: CONNECT answered %v %v", id, p.Type, p.ReturnCode)
		}
		return c
	}

	sub := dial("bp-sub")
	sub.Write(packet.Append(nil, &packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: 1, TopicName: []byte("bp/t")}))
	if p := readPacket(t, sub, 2*time.Second); p.Type != packet.SUBACK || p.ReturnCode != packet.Accepted {
		t.Fatalf("SUBACK: %v %v", p.Type, p.ReturnCode)
	}
	pub := dial("bp-pub")
	pub.Write(packet.Append(nil, &packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("bp/t")}))
	reg := readPacket(t, pub, 2*time.Second)
	if reg.Type != packet.REGACK || reg.ReturnCode != packet.Accepted {
		t.Fatalf("REGACK: %v %v", reg.Type, reg.ReturnCode)
	}

	// The subscriber: acknowledge every delivery, remember its payload.
	var mu sync.Mutex
	delivered := map[string]int{}
	stopSub := make(chan struct{})
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		buf := make([]byte, 512)
		var p packet.Packet
		for {
			select {
			case <-stopSub:
				return
			default:
			}
			sub.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := sub.Read(buf)
			if err != nil {
				continue
			}
			if packet.Decode(buf[:n], &p) != nil || p.Type != packet.PUBLISH {
				continue
			}
			mu.Lock()
			delivered[string(p.Data)]++
			mu.Unlock()
			sub.Write(packet.Append(nil, &packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID}))
		}
	}()

	// The publisher: 16 unacknowledged at all times for 3 s, resending with DUP what
	// goes unanswered for a second (as a client's T_RETRY would, only sooner).
	const window, runFor = 16, 3 * time.Second
	type pending struct {
		p    packet.Packet
		sent time.Time
	}
	inFlight := map[uint16]*pending{}
	accepted, congested := map[string]bool{}, 0
	var msgID uint16 = 1
	next, resends := 0, 0
	start := time.Now()
	end := start.Add(runFor)
	var lastAck time.Time
	buf := make([]byte, 512)
	for time.Now().Before(end) || (len(inFlight) > 0 && time.Since(end) < 40*time.Second) {
		now := time.Now()
		for len(inFlight) < window && now.Before(end) {
			msgID++
			if msgID == 0 {
				msgID = 1
			}
			p := packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1), TopicID: reg.TopicID, MsgID: msgID, Data: []byte(strconv.Itoa(next))}
			next++
			inFlight[msgID] = &pending{p: p, sent: now}
			pub.Write(packet.Append(nil, &p))
		}
		for _, pe := range inFlight {
			if now.Sub(pe.sent) > time.Second {
				p := pe.p
				p.Flags |= packet.FlagDUP
				pe.sent = now
				resends++
				pub.Write(packet.Append(nil, &p))
			}
		}
		pub.SetReadDeadline(now.Add(50 * time.Millisecond))
		n, err := pub.Read(buf)
		if err != nil {
			continue
		}
		var p packet.Packet
		if packet.Decode(buf[:n], &p) != nil || p.Type != packet.PUBACK {
			continue
		}
		pe, ok := inFlight[p.MsgID]
		if !ok {
			continue
		}
		delete(inFlight, p.MsgID)
		if p.ReturnCode == packet.Accepted {
			accepted[string(pe.p.Data)] = true
			lastAck = time.Now()
		} else {
			congested++
		}
	}
	elapsed := lastAck.Sub(start)
	// Let the subscriber drain what was accepted.
	missing := func() (lost, dups int) {
		mu.Lock()
		defer mu.Unlock()
		for m := range accepted {
			switch n := delivered[m]; {
			case n == 0:
				lost++
			case n > 1:
				dups += n - 1
			}
		}
		return lost, dups
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if l, _ := missing(); l == 0 {
			break
		}
	}
	close(stopSub)
	<-subDone
	lost, dups := missing()
	mu.Lock()
	total := 0
	for _, n := range delivered {
		total += n
	}
	mu.Unlock()
	t.Logf("16 in flight for %v: %d published, %d acknowledged, %d delivered (%d duplicates), %d acknowledged and lost, %d congestion answers, %d DUP resends, still unanswered %d; publisher %.0f acknowledged/s",
		runFor, next, len(accepted), total, dups, lost, congested, resends, len(inFlight), float64(len(accepted))/elapsed.Seconds())
	if *backpressurePolicy == "drop" {
		return // the old behaviour, for comparison: nothing promised
	}
	if lost != 0 || len(accepted) == 0 {
		t.Errorf("%d of %d acknowledged messages never delivered", lost, len(accepted))
	}
	if len(inFlight) != 0 {
		t.Errorf("%d publications never answered", len(inFlight))
	}
}

// readPacket reads one datagram from c and decodes it (a zero Packet on timeout).
func readPacket(t *testing.T, c *net.UDPConn, timeout time.Duration) packet.Packet {
	t.Helper()
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.Read(buf)
	if err != nil {
		return packet.Packet{}
	}
	var p packet.Packet
	if err := packet.Decode(buf[:n], &p); err != nil {
		t.Fatal(err)
	}
	return p
}
