package broker_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// checkDurable is FuzzEngine's durability-completeness check: after a call, the
// journal records taken so far (as the daemon commits them after every call) must
// restore into a fresh engine whose durable state (broker.DurableState: what
// docs/durability.md promises survives a restart) is the live engine's. So must a
// snapshot of the live engine (what compaction writes). A durable change the engine
// makes without recording it fails here, at the call that made it.
func (h *engineHarness) checkDurable(call string) {
	h.t.Helper()
	h.log = append(h.log, h.b.TakeJournal()...)
	live := broker.DurableState(h.b)
	// Restoring is a function of the records alone (the clock only sets sleep timers,
	// which are not compared): restore again only when there are new ones. A snapshot
	// is a function of the live state: restore one only when that changed.
	if len(h.log) != h.restoredLen || h.restored == nil {
		h.restored = h.restore(call, "journal", h.log, live)
		h.restoredLen = len(h.log)
	}
	if d := broker.DiffLines(live, h.restored); d != "" {
		h.t.Fatalf("after %s at %v (last input %s): durable state restored from the journal differs from the live engine's (- live, + restored):\n%s",
			call, h.now, h.lastInput, d)
	}
	if !slices.Equal(live, h.snapshotted) || h.snapshotted == nil {
		if d := broker.DiffLines(live, h.restore(call, "snapshot", h.b.Snapshot(nil), live)); d != "" {
			h.t.Fatalf("after %s at %v (last input %s): durable state restored from a snapshot differs from the live engine's (- live, + restored):\n%s",
				call, h.now, h.lastInput, d)
		}
		h.snapshotted = live
	}
}

// restore restores records into a fresh engine and returns its durable state; nothing
// may be skipped or left out (the live engine kept within its limits).
func (h *engineHarness) restore(call, what string, records []byte, live []string) []string {
	h.t.Helper()
	r, err := broker.New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if rep := r.Restore(h.now, records); rep.Undecodable != 0 || rep.Dropped() != 0 {
		h.t.Fatalf("after %s at %v (last input %s): the %s does not restore whole: %+v\nlive state:\n%s",
			call, h.now, h.lastInput, what, rep, strings.Join(live, "\n"))
	}
	return broker.DurableState(r)
}

// describe names an input datagram for a failure message.
func describe(c int, d []byte) string {
	var p packet.Packet
	if err := packet.Decode(d, &p); err != nil {
		return fmt.Sprintf("malformed %x from peer %d", d, c)
	}
	return fmt.Sprintf("%v %x from peer %d", p.Type, d, c)
}
