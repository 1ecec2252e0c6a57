package latency

import (
	"testing"
)

func TestStageString(t *testing.T) {
	want := []string{"received", "decoded", "matched", "queued", "sent", "Stage(5)"}
	for s := Stage(0); int(s) < len(want); s++ {
		if got := s.String(); got != want[s] {
			t.Errorf("Stage(%d).String() = %q, want %q", s, got, want[s])
		}
	}
}

// fixedFreq is a clock at freq whose readings the test never takes: stamps are
// written by hand.
func fixedFreq(freq uint64) Clock { return Func(func() uint64 { return 0 }, freq) }

func TestTracerObserve(t *testing.T) {
	tr := NewTracer(fixedFreq(62_500_000)) // 16 ns per tick, as QEMU's arm generic timer
	tr.Observe(&[NumStages]uint64{100, 110, 130, 160, 200})
	// Decoded not stamped: received→decoded and decoded→matched are skipped.
	tr.Observe(&[NumStages]uint64{1000, 0, 1010, 1020, 1030})
	// Sent before Queued (a clock that went back): that interval is skipped.
	tr.Observe(&[NumStages]uint64{5000, 5001, 5002, 5003, 4000})

	for _, tc := range []struct {
		s    Stage
		want []uint64 // ns, in order of size
	}{
		{Decoded, []uint64{16, 160}},
		{Matched, []uint64{16, 320}},
		{Queued, []uint64{16, 160, 480}},
		{Sent, []uint64{160, 640}},
	} {
		s := tr.Stage(tc.s).Snapshot()
		if s.Count() != uint64(len(tc.want)) || s.Min() != tc.want[0] || s.Max() != tc.want[len(tc.want)-1] {
			t.Errorf("interval to %v: count %d min %d max %d, want %v", tc.s, s.Count(), s.Min(), s.Max(), tc.want)
		}
	}
	if e := tr.EndToEnd().Snapshot(); e.Count() != 2 || e.Min() != 480 || e.Max() != 1600 {
		t.Errorf("end to end: count %d min %d max %d, want 2 480 1600", e.Count(), e.Min(), e.Max())
	}

	tr.ObserveEndToEnd(0, 50)  // no stamp
	tr.ObserveEndToEnd(60, 50) // backwards
	tr.ObserveEndToEnd(50, 60)
	tr.RecordEndToEnd(7)
	if e := tr.EndToEnd().Snapshot(); e.Count() != 4 || e.Min() != 7 {
		t.Errorf("after ObserveEndToEnd and RecordEndToEnd: count %d min %d, want 4 7", e.Count(), e.Min())
	}
	tr.RecordStage(Matched, 3)
	tr.RecordStage(Received, 3) // no interval ends at Received
	tr.RecordStage(NumStages, 3)
	if m := tr.Stage(Matched).Snapshot(); m.Count() != 3 || m.Min() != 3 {
		t.Errorf("after RecordStage(Matched, 3): count %d min %d", m.Count(), m.Min())
	}
	if tr.Stage(Received) != nil || tr.Stage(NumStages) != nil {
		t.Error("Stage(Received) or Stage(NumStages) is not nil")
	}

	hs := tr.AppendSnapshots(nil)
	names := []string{"latency_end_to_end", "latency_received_decoded", "latency_decoded_matched",
		"latency_matched_queued", "latency_queued_sent"}
	if len(hs) != len(names) {
		t.Fatalf("AppendSnapshots gave %d histograms, want %d", len(hs), len(names))
	}
	for i, h := range hs {
		if h.Name != names[i] || h.Help == "" {
			t.Errorf("histogram %d: name %q help %q, want name %q", i, h.Name, h.Help, names[i])
		}
	}
	if hs[0].Snap.Count() != 4 || hs[2].Snap.Count() != 3 {
		t.Errorf("snapshot counts %d, %d, want 4, 3", hs[0].Snap.Count(), hs[2].Snap.Count())
	}

	tr.Reset()
	for _, h := range tr.AppendSnapshots(hs[:0]) {
		if h.Snap.Count() != 0 {
			t.Errorf("%s: count %d after Reset", h.Name, h.Snap.Count())
		}
	}
	if NewTracer(nil).Clock() == nil {
		t.Error("NewTracer(nil) has no clock")
	}
	var zero Tracer
	zero.ObserveEndToEnd(1000, 1500)
	if s := zero.EndToEnd().Snapshot(); zero.Clock().Freq() != 1e9 || s.Max() != 500 {
		t.Error("the zero Tracer does not take ticks as nanoseconds of the default clock")
	}
}

func TestTracerAllocs(t *testing.T) {
	tr := NewTracer(fixedFreq(3_000_000_000))
	stamps := [NumStages]uint64{1, 2, 3, 4, 5}
	if a := testing.AllocsPerRun(1000, func() {
		for i := range stamps {
			stamps[i] += 1000 * uint64(i+1)
		}
		tr.Observe(&stamps)
		tr.ObserveEndToEnd(stamps[Received], stamps[Sent])
		tr.RecordStage(Queued, 77)
	}); a != 0 {
		t.Errorf("Tracer allocates: %v per datagram", a)
	}
}

func BenchmarkTracer(b *testing.B) {
	for _, tc := range []struct {
		name string
		freq uint64
	}{{"ns", 1e9}, {"tsc", 2_995_200_000}} {
		tr := NewTracer(fixedFreq(tc.freq))
		b.Run("Observe/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var stamps [NumStages]uint64
			for i := uint64(1); b.Loop(); i++ {
				for s := range stamps {
					stamps[s] = i*100_000 + uint64(s)*(i%4096)
				}
				tr.Observe(&stamps)
			}
		})
		b.Run("ObserveEndToEnd/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := uint64(1); b.Loop(); i++ {
				tr.ObserveEndToEnd(i*100_000, i*100_000+i%65536)
			}
		})
	}
}
