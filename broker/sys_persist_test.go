package broker

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/musqratt/musqratt/broker/journal"
	"github.com/musqratt/musqratt/broker/packet"
)

// retainRecords lists the topics of the Retain records in a journal.
func retainRecords(t *testing.T, log []byte) []string {
	t.Helper()
	var names []string
	for len(log) > 0 {
		k, body, n, err := journal.Next(log)
		if err != nil {
			t.Fatalf("journal: %v", err)
		}
		if k == journal.KindRetain {
			r := journal.Reader{B: body}
			names = append(names, r.String())
		}
		log = log[n:]
	}
	return names
}

// `$SYS/` retained messages live in memory only: Inject keeps and delivers them, but
// they are neither journalled nor in a snapshot, and an older log's are not restored.
// Only the topic id, assigned once, is journalled, as any topic id is.
func TestSysRetainedNotJournalled(t *testing.T) {
	h := newPersistHarness(t, nil)
	for _, v := range []string{"1 seconds", "2 seconds", "3 seconds"} {
		out, err := h.b.Inject(h.now, "$SYS/broker/uptime", []byte(v), 0, true, nil)
		if err != nil || len(out) != 0 {
			t.Fatalf("inject: %v %v", out, err)
		}
		j := h.b.TakeJournal()
		if got := retainRecords(t, j); len(got) != 0 {
			t.Fatalf("inject $SYS retained %q journalled %q", v, got)
		}
		if v != "1 seconds" && len(j) != 0 {
			// The first one assigned the topic id (journalled: a session may learn it).
			t.Fatalf("inject $SYS retained %q again journalled %d octets", v, len(j))
		}
		h.log = append(h.log, j...)
	}
	if _, err := h.b.Inject(h.now, "plain/topic", []byte("x"), 0, true, nil); err != nil {
		t.Fatal(err)
	}
	h.log = append(h.log, h.b.TakeJournal()...)
	if got := retainRecords(t, h.log); len(got) != 1 || got[0] != "plain/topic" {
		t.Fatalf("journalled retains %q, want [plain/topic]", got)
	}
	if got := retainRecords(t, h.b.Snapshot(nil)); len(got) != 1 || got[0] != "plain/topic" {
		t.Fatalf("snapshot retains %q, want [plain/topic]", got)
	}
	if got := h.b.Stats().Retained; got != 2 {
		t.Fatalf("retained in memory: %d, want 2", got)
	}

	// A subscriber still gets the live $SYS value at once.
	addr := netip.MustParseAddrPort("10.0.0.1:1000")
	h.send(addr, packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("s")})
	got := h.send(addr, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("$SYS/#")})
	found := false
	for _, p := range got {
		if p.Type == packet.REGISTER && string(p.TopicName) == "$SYS/broker/uptime" {
			got = h.send(addr, packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
		}
	}
	for _, p := range got {
		found = found || p.Type == packet.PUBLISH && bytes.Equal(p.Data, []byte("3 seconds"))
	}
	if !found {
		t.Fatalf("SUBSCRIBE $SYS/# got %+v, want the retained uptime", got)
	}

	// A log written before this rule (a $SYS Retain record in it) restores without it.
	var old []byte
	w := journal.Writer{}
	w.String("$SYS/broker/uptime")
	w.U8(0)
	w.Bytes([]byte("99 seconds"))
	old = journal.AppendRecord(old, journal.KindRetain, w.B)
	old = append(old, h.log...)
	h2 := newPersistHarness(t, old)
	if got := h2.b.Stats().Retained; got != 1 {
		t.Fatalf("restored %d retained, want 1 (plain/topic only)", got)
	}
	h2.send(addr, packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte("s")})
	for _, p := range h2.send(addr, packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("$SYS/#")}) {
		if p.Type == packet.PUBLISH || p.Type == packet.REGISTER {
			t.Fatalf("stale $SYS value restored: %+v", p)
		}
	}
}
