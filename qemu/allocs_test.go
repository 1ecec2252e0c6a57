package qemu

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// The allocation tests measure, inside each image, the heap allocations per message in
// steady state: heap_allocs_total (the runtime's Mallocs) from the console's dump before
// and after allocsMessages QoS 0 messages, each published and delivered through the
// broker (two datagrams through the NIC, gVisor, the Bind and the loop), less what
// rendering a dump costs. The hosted tests in net/netstack and net/serve prove the glue,
// the Bind and the loop allocate nothing; what remains here is gVisor's own (about ten
// per datagram, net/netstack's TestRoundTripAllocs) and the board's driver.
func TestMX6ULLEVKAllocations(t *testing.T) { testAllocations(t, MX6ULLEVK) }

func TestMicrovmAllocations(t *testing.T) { testAllocations(t, Microvm) }

const (
	allocsWarmup   = 1000
	allocsMessages = 10000
	// allocsBound is the most allocations per message the test accepts: gVisor's ten
	// per datagram each way and a little for the drivers. The figure is logged.
	allocsBound = 26
)

func testAllocations(t *testing.T, m Machine) {
	every := "0"
	if m.Board == Microvm.Board {
		every = "1s" // output-only console: periodic dumps
	}
	in := bootImage(t, m, "-X", "main.DumpEvery="+every)
	addr := net.UDPAddrFromAddrPort(in.Addr)
	dial := func(id string) *fanoutSub {
		c, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s := &fanoutSub{c: c, buf: make([]byte, 512)}
		if err := s.exchange(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession,
			ProtocolID: packet.ProtocolID, Duration: 600, ClientID: []byte(id)}, packet.CONNACK); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return s
	}
	topicID := uint16('a')<<8 | uint16('l')
	sub, pub := dial("alloc-sub"), dial("alloc-pub")
	if err := sub.exchange(&packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicShort),
		MsgID: 1, TopicID: topicID}, packet.SUBACK); err != nil {
		t.Fatal(err)
	}
	publish := packet.Append(nil, &packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithTopicIDType(packet.TopicShort),
		TopicID: topicID, Data: []byte("0123456789abcdef0123456789abcdef")})
	// One message at a time: publish, wait for its delivery. The subscriber answers
	// the broker's address challenge (a REGISTER once its unproven budget is used up)
	// as a client would.
	var p packet.Packet
	run := func(n int) (lost int) {
		for i := 0; i < n; i++ {
			pub.c.Write(publish)
			sub.c.SetReadDeadline(time.Now().Add(time.Second))
			for {
				k, err := sub.c.Read(sub.buf)
				if err != nil {
					lost++
					break
				}
				p.Reset()
				if packet.Decode(sub.buf[:k], &p) != nil {
					continue
				}
				if p.Type == packet.REGISTER {
					sub.c.Write(packet.Append(nil, &packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted}))
					continue
				}
				if p.Type == packet.PUBLISH {
					break
				}
			}
		}
		return lost
	}
	run(allocsWarmup)
	d0 := dumpValues(t, in, m)
	d1 := dumpValues(t, in, m) // what a dump itself allocates
	t0 := time.Now()
	lost := run(allocsMessages)
	took := time.Since(t0)
	d2 := dumpValues(t, in, m)
	dumpCost := d1["heap_allocs_total"] - d0["heap_allocs_total"]
	allocs := d2["heap_allocs_total"] - d1["heap_allocs_total"] - dumpCost
	per := float64(allocs) / allocsMessages
	t.Logf("%s: %d messages in %v (%d not delivered within 1 s); %d heap allocations (a dump costs %d): %.2f per message, %.2f per datagram; GC cycles %d → %d; heap objects %d → %d",
		m.Board, allocsMessages, took.Round(time.Millisecond), lost, allocs, dumpCost, per, per/2,
		d1["gc_cycles_total"], d2["gc_cycles_total"], d1["heap_objects"], d2["heap_objects"])
	if lost > allocsMessages/100 {
		t.Errorf("%d of %d messages not delivered", lost, allocsMessages)
	}
	if per > allocsBound {
		t.Errorf("%.2f heap allocations per message, want at most %d", per, allocsBound)
	}
}

// dumpValues asks for the next metrics dump and returns its unlabelled numbers.
func dumpValues(t *testing.T, in *Instance, m Machine) map[string]int64 {
	t.Helper()
	before := len(in.Console())
	if m.Board != Microvm.Board {
		if err := in.Send("stats"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := in.Console()[before:]
		if i := strings.Index(c, "== musqratt"); i >= 0 {
			if j := strings.Index(c[i:], "histogram (µs)"); j >= 0 {
				v := map[string]int64{}
				for _, line := range strings.Split(c[i:i+j], "\n") {
					f := strings.Fields(line)
					if len(f) == 2 {
						if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
							v[f[0]] = n
						}
					}
				}
				return v
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no metrics dump on the console within 10 s", m.Board)
	return nil
}
