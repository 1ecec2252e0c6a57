package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/kernel"
)

// compactionRun drives a journaling broker through n datagrams of retained updates
// over 64 topics (plus a persistent QoS 1 subscriber's owed deliveries) with the
// daemon's journalState, in virtual time (1 ms per datagram), and returns the store.
func compactionRun(t *testing.T, n int) (written, appended, compactions uint64, retained int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.journal")
	cfg := kernel.Config{StateFile: path, Durability: "none", CompactSize: 4096}
	j, err := openState(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b, err := broker.New(broker.Config{Persist: true, AdvertiseInterval: -1, MaxAmplification: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	if err := j.Restore(b, now); err != nil {
		t.Fatal(err)
	}
	send := func(from netip.AddrPort, p packet.Packet) []broker.Datagram {
		out := b.Receive(now, broker.Datagram{Addr: from, B: packet.Append(nil, &p)}, nil)
		if err := j.Commit(b, now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
		return out
	}
	sub, pub := netip.MustParseAddrPort("127.0.0.1:1001"), netip.MustParseAddrPort("127.0.0.1:1002")
	send(sub, packet.Packet{Type: packet.CONNECT, ProtocolID: 1, Duration: 600, ClientID: []byte("sub")})
	send(sub, packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(1), MsgID: 1, TopicName: []byte("r/0")})
	send(sub, packet.Packet{Type: packet.DISCONNECT})
	send(pub, packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 600, ClientID: []byte("pub")})
	ids := make([]uint16, 64)
	for i := range ids {
		out := send(pub, packet.Packet{Type: packet.REGISTER, MsgID: uint16(i + 1), TopicName: []byte(fmt.Sprintf("r/%d", i))})
		var p packet.Packet
		packet.Decode(out[0].B, &p)
		ids[i] = p.TopicID
	}
	payload := make([]byte, 200)
	for i := 0; i < n; i++ {
		payload[0] = byte(i)
		q := packet.QoS0
		if i%64 == 0 {
			q = packet.QoS1 // owed to the offline persistent subscriber (bounded by its queue)
		}
		send(pub, packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(q).WithTopicIDType(packet.TopicNormal) | packet.FlagRetain,
			TopicID: ids[i%64], MsgID: uint16(i%60000 + 1), Data: payload})
	}
	return j.store.Written, j.store.Appended, j.store.Compactions, b.Stats().Retained
}

// Attack 2: once durable state exceeds compact_size, compaction is amortised — the
// disk receives at most 3× the octets of state changes — where the policy it
// replaced rewrote and synced the whole state after every datagram.
func TestCompactionWriteAmplification(t *testing.T) {
	const n = 20000
	written, appended, compactions, retained := compactionRun(t, n)
	amp := float64(written) / float64(appended)
	t.Logf("amortised: %d datagrams, %d octets of changes, %d octets written (%.2f×), %d compactions", n, appended, written, amp, compactions)
	if amp > 3.0 || retained != 64 {
		t.Fatalf("write amplification %.2f× (bound 3), %d retained", amp, retained)
	}
	if compactions > n/1000+1 {
		t.Fatalf("%d compactions over %d datagrams (%v of virtual time)", compactions, n, n*time.Millisecond)
	}

	defer func(g int64, i time.Duration) { compactGrowth, compactMinInterval = g, i }(compactGrowth, compactMinInterval)
	compactGrowth, compactMinInterval = 0, 0 // the policy before: compact whenever past compact_size
	const m = 2000
	written, appended, compactions, _ = compactionRun(t, m)
	t.Logf("before (compact on every datagram past compact_size): %d datagrams, %d octets of changes, %d written (%.1f×), %d compactions",
		m, appended, written, float64(written)/float64(appended), compactions)
}
