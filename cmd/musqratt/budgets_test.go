package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// Issue 12's attacks against the real daemon, each bounded to a few seconds on
// loopback, with an established QoS 1 pair (the canary) that must lose nothing.

func (e *established) p99(rtts []time.Duration) time.Duration {
	if len(rtts) == 0 {
		return 0
	}
	s := slices.Clone(rtts)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// canary runs the established pair's QoS 1 traffic while attack runs, then checks
// that nothing was lost and reports its p99.
func canary(t *testing.T, addr, what string, attack func()) {
	t.Helper()
	steady := newEstablished(t, addr)
	stop := make(chan struct{})
	rttc := make(chan []time.Duration, 1)
	go func() { rttc <- steady.publishWhile(t, stop) }()
	attack()
	close(stop)
	rtts := <-rttc
	steady.check(t, what, rtts)
	t.Logf("%s: canary PUBACK p99 %v over %d publishes", what, steady.p99(rtts).Round(time.Microsecond), len(rtts))
}

func newSNClientFrom(t *testing.T, srv netip.AddrPort, ip net.IP) *snClient {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &snClient{t: t, c: c, srv: srv}
}

// Attacks 3 and 4: deep and long filters are refused (SUBACK 0x03); one socket cycling
// through client ids registers far more names than there are topic ids, and the ids
// come back each time, so a newcomer still registers; one client cannot pass
// max_topics_per_client.
func TestBudgetTopics(t *testing.T) {
	bin := daemonBinary(t)
	d := startDaemon(t, bin, writeConf(t, "sys_interval off\nmax_topics 5000"), "127.0.0.1:0")
	defer d.stop()
	addr := "127.0.0.1:" + d.port
	srv := netip.MustParseAddrPort(addr)
	canary(t, addr, "topic attacks", func() {
		a := newSNClient(t, srv)
		a.connect("deep")
		deep := strings.Repeat("a/", 32000) + "#"
		a.send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: 1, TopicName: []byte(deep)})
		if p := a.recv(); p.Type != packet.SUBACK || p.ReturnCode != packet.NotSupported {
			t.Errorf("a %d-level filter: %+v", 32001, p)
		}
		a.send(packet.Packet{Type: packet.REGISTER, MsgID: 2, TopicName: []byte(strings.Repeat("x", 60000))})
		if p := a.recv(); p.Type != packet.REGACK || p.ReturnCode != packet.NotSupported {
			t.Errorf("a 60000-octet name: %+v", p)
		}
		// 12 client ids × 1000 names from one socket: 12,000 registrations against
		// max_topics 5000. Each CONNECT ends the previous client id's session.
		for k := 0; k < 12; k++ {
			a.connect(fmt.Sprintf("hog-%d", k))
			accepted, congested := 0, 0
			for i := 0; i < 1001; i += 50 { // windows of 50: loopback drops what overflows a socket buffer
				w := min(50, 1001-i)
				for j := 0; j < w; j++ {
					a.send(packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + j + 1), TopicName: fmt.Appendf(nil, "hog/%d/%d", k, i+j)})
				}
				for j := 0; j < w; j++ {
					switch p := a.recv(); {
					case p.Type == packet.REGACK && p.ReturnCode == packet.Accepted:
						accepted++
					case p.Type == packet.REGACK && p.ReturnCode == packet.Congestion:
						congested++
					}
				}
			}
			if accepted != 1000 || congested != 1 {
				t.Fatalf("client %d: %d accepted, %d congestion; want 1000 (max_topics_per_client) and 1", k, accepted, congested)
			}
		}
		n := newSNClientFrom(t, srv, net.IPv4(127, 0, 0, 2))
		n.connect("newcomer")
		n.send(packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("newcomer/topic")})
		if p := n.recv(); p.ReturnCode != packet.Accepted {
			t.Errorf("newcomer REGISTER after the hog: %+v", p)
		}
	})
	if rss, err := rssOf(d.cmd.Process.Pid); err == nil {
		t.Logf("broker RSS after the topic attacks: %.1f MiB", float64(rss)/(1<<20))
	}
}

// Attack 5: one address fills max_clients_per_address, not max_clients; half-open
// will exchanges are bounded; newcomers from elsewhere connect.
func TestBudgetClientSlots(t *testing.T) {
	bin := daemonBinary(t)
	d := startDaemon(t, bin, writeConf(t, "sys_interval off\nmax_clients 300\nmax_clients_per_address 100\nmax_connecting 20\nconnect_timeout 1s"), "127.0.0.1:0")
	defer d.stop()
	addr := "127.0.0.1:" + d.port
	srv := netip.MustParseAddrPort(addr)
	canary(t, addr, "slot attacks", func() {
		raiseFileLimit(4096)
		accepted, congested := 0, 0
		for i := 0; i < 150; i++ { // the canary's two sessions are on 127.0.0.1 too
			c := newSNClient(t, srv)
			c.send(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, ClientID: fmt.Appendf(nil, "slot-%d", i)})
			switch p := c.recv(); p.ReturnCode {
			case packet.Accepted:
				accepted++
			case packet.Congestion:
				congested++
			}
		}
		if accepted != 98 || congested != 52 {
			t.Errorf("one address: %d accepted, %d congestion; want 98 (+2 canary) and 52", accepted, congested)
		}
		halfOpen := 0
		for i := 0; i < 30; i++ {
			c := newSNClientFrom(t, srv, net.IPv4(127, 0, 3, byte(i+1)))
			c.send(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 60, ClientID: fmt.Appendf(nil, "half-%d", i)})
			if p := c.recv(); p.Type == packet.WILLTOPICREQ {
				halfOpen++
			}
		}
		if halfOpen != 20 {
			t.Errorf("%d half-open will exchanges taken, want max_connecting 20", halfOpen)
		}
		time.Sleep(1200 * time.Millisecond) // connect_timeout: they are abandoned
		for i := 0; i < 5; i++ {
			c := newSNClientFrom(t, srv, net.IPv4(127, 0, 4, byte(i+1)))
			c.send(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession | packet.FlagWill, ProtocolID: 1, Duration: 60, ClientID: fmt.Appendf(nil, "new-%d", i)})
			if p := c.recv(); p.Type != packet.WILLTOPICREQ {
				t.Errorf("newcomer %d after the half-open ones timed out: %+v", i, p)
			}
		}
	})
}

// Attack 7 (and what attack 1 destroyed): a plain restart keeps every acknowledged
// message and the retained one; flipped bits in the state file lose only the records
// they hit, and the broker says so.
func TestBudgetRestoreAfterDamage(t *testing.T) {
	bin := daemonBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.journal")
	conf := writeConf(t, "sys_interval off\nstate_file "+state)
	d := startDaemon(t, bin, conf, "127.0.0.1:0")
	srv := netip.MustParseAddrPort("127.0.0.1:" + d.port)
	sub := newSNClient(t, srv)
	sub.send(packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 600, ClientID: []byte("victim")})
	sub.recv()
	sub.send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: 1, TopicName: []byte("owed")})
	topicID := sub.recv().TopicID
	// The attacker of issue 12 #1: huge filters, refused now (0x03), not acknowledged.
	att := newSNClient(t, srv)
	att.send(packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 600, ClientID: []byte("attacker")})
	att.recv()
	for i := 0; i < 20; i++ {
		att.send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: uint16(i + 1), TopicName: fmt.Appendf(nil, "%d/%s", i, strings.Repeat("f", 65000))})
		if p := att.recv(); p.ReturnCode != packet.NotSupported {
			t.Fatalf("a 65 KB filter: %+v", p)
		}
	}
	sub.send(packet.Packet{Type: packet.DISCONNECT})
	sub.recv()
	pub := newSNClient(t, srv)
	pub.connect("pub")
	pub.send(packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte("owed")})
	pid := pub.recv().TopicID
	const n = 100
	for i := 0; i < n; i++ {
		pub.send(packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(1).WithTopicIDType(packet.TopicNormal), TopicID: pid, MsgID: uint16(i + 1), Data: fmt.Appendf(nil, "m%03d", i)})
		if p := pub.recv(); p.Type != packet.PUBACK || p.ReturnCode != packet.Accepted {
			t.Fatalf("PUBACK %d: %+v", i, p)
		}
	}
	d.stop()
	data, _ := os.ReadFile(state)
	// Three flipped bits in the middle of the file.
	for _, at := range []int{len(data) / 3, len(data) / 2, 2 * len(data) / 3} {
		data[at] ^= 0x10
	}
	os.WriteFile(state, data, 0o600)

	d = startDaemon(t, bin, conf, "127.0.0.1:0")
	defer d.stop()
	srv = netip.MustParseAddrPort("127.0.0.1:" + d.port)
	back := newSNClient(t, srv)
	back.send(packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 600, ClientID: []byte("victim")})
	got := map[string]bool{}
	for deadline := time.Now().Add(5 * time.Second); len(got) < n && time.Now().Before(deadline); {
		back.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 2048)
		k, _, err := back.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		var p packet.Packet
		if packet.Decode(buf[:k], &p) != nil {
			continue
		}
		switch p.Type {
		case packet.REGISTER:
			back.send(packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
		case packet.PUBLISH:
			got[string(p.Data)] = true
			back.send(packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
		}
	}
	_ = topicID
	t.Logf("after 3 flipped bits: %d of %d acknowledged messages came back", len(got), n)
	if len(got) < n-3 {
		t.Errorf("%d of %d owed messages restored after 3 flipped bits; each can cost at most the record it hits", len(got), n)
	}
	if !strings.Contains(d.logs.String(), "state file damaged") {
		t.Errorf("no damage reported:\n%s", d.logs.String())
	}
}
