package broker

import (
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/journal"
)

// FuzzRestore: a journal whose records have valid checksums but arbitrary bodies (a
// bug or an older format, not disk damage) must never crash the broker on start; a
// restored broker must then serve.
func FuzzRestore(f *testing.F) {
	var w journal.Writer
	w.String("c")
	w.U8(1)
	f.Add(uint8(journal.KindSession), w.B)
	f.Add(uint8(journal.KindMsg), []byte{0, 0, 0, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(uint8(journal.KindRetain), []byte{0, 0, 0, 1, 't', 1, 0, 0, 0, 1, 'x'})
	f.Add(uint8(journal.KindTopic), []byte{0, 1, 0, 0, 0, 1, 't'})
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		b, err := New(Config{Persist: true, AdvertiseInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		log := journal.AppendRecord(nil, journal.Kind(kind), body)
		log = journal.AppendRecord(log, journal.Kind(kind), body) // applied twice: replacement must hold
		now := time.Unix(100, 0)
		_ = b.Restore(now, log)
		snap := b.Snapshot(nil)
		b2, _ := New(Config{Persist: true, AdvertiseInterval: -1})
		if rep := b2.Restore(now, snap); rep.Undecodable != 0 || rep.Dropped() != 0 {
			t.Fatalf("a snapshot of restored state does not restore whole: %+v", rep)
		}
		b.Tick(now.Add(time.Hour), nil)
	})
}
