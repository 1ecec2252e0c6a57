package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func records(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = AppendRecord(b, KindTopic, []byte(fmt.Sprintf("record-%03d", i)))
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	var w Writer
	w.U8(1)
	w.U16(2)
	w.U32(3)
	w.U64(4)
	w.Bool(true)
	w.String("five")
	w.Bytes([]byte{6})
	rec := AppendRecord(nil, KindMsg, w.B)
	k, body, n, err := Next(rec)
	if err != nil || k != KindMsg || n != len(rec) {
		t.Fatalf("Next: %v %v %d", k, err, n)
	}
	r := Reader{B: body}
	if r.U8() != 1 || r.U16() != 2 || r.U32() != 3 || r.U64() != 4 || !r.Bool() || r.String() != "five" || !bytes.Equal(r.Bytes(), []byte{6}) || r.Err != nil {
		t.Fatal("fields did not round trip")
	}
	if r.U8(); r.Err == nil {
		t.Fatal("reading past the end must fail")
	}
}

func TestScanStopsAtDamage(t *testing.T) {
	data := records(10)
	one := len(AppendRecord(nil, KindTopic, []byte("record-000")))
	cases := map[string]struct {
		mutate func([]byte) []byte
		keep   int // whole records kept
	}{
		"intact":           {func(b []byte) []byte { return b }, 10},
		"truncated tail":   {func(b []byte) []byte { return b[:len(b)-3] }, 9},
		"torn header":      {func(b []byte) []byte { return b[:5*one+4] }, 5},
		"flipped body bit": {func(b []byte) []byte { b[3*one+12] ^= 1; return b }, 3},
		"flipped crc":      {func(b []byte) []byte { b[7*one+5] ^= 0x80; return b }, 7},
		"huge length":      {func(b []byte) []byte { b[2*one] = 0xff; return b }, 2},
		"zero length":      {func(b []byte) []byte { copy(b[4*one:], []byte{0, 0, 0, 0}); return b }, 4},
		"garbage appended": {func(b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) }, 10},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), data...))
			valid, err := Scan(b)
			if len(valid) != c.keep*one {
				t.Fatalf("kept %d octets, want %d (%d records); err %v", len(valid), c.keep*one, c.keep, err)
			}
			if (err == nil) != (name == "intact") || (err != nil && !errors.Is(err, ErrCorrupt)) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestOpenRecoversAndReportsDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.log")
	s, got, damage, err := Open(path, PolicyStrict)
	if err != nil || damage != nil || len(got) != 0 {
		t.Fatalf("fresh open: %v %v %d", err, damage, len(got))
	}
	if err := s.Append(records(5), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s.Syncs != 1 {
		t.Fatalf("strict policy synced %d times for one batch", s.Syncs)
	}
	s.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0, 40, 1, 2}) // a torn record, as a crash mid-write leaves
	f.Close()

	s, got, damage, err = Open(path, PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	if damage == nil || damage.Path != path || damage.Offset != int64(len(records(5))) || damage.Discarded != 6 {
		t.Fatalf("damage = %+v", damage)
	}
	if !bytes.Equal(got, records(5)) {
		t.Fatal("the valid records were not all recovered")
	}
	if _, err := os.Stat(damage.SavedAs); err != nil {
		t.Fatalf("damaged copy not kept: %v", err)
	}
	// Appends continue cleanly after the cut.
	s.Append(records(1), time.Now())
	s.Close()
	data, _ := os.ReadFile(path)
	if valid, err := Scan(data); err != nil || len(valid) != len(records(5))+len(records(1)) {
		t.Fatalf("after recovery and append: %d octets valid, err %v", len(valid), err)
	}
}

func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.log")
	s, _, _, err := Open(path, PolicyInterval)
	if err != nil {
		t.Fatal(err)
	}
	s.Append(records(50), time.Now())
	if err := s.Compact(records(2)); err != nil {
		t.Fatal(err)
	}
	s.Append(records(1), time.Now())
	s.Close()
	data, _ := os.ReadFile(path)
	want := append(records(2), records(1)...)
	if !bytes.Equal(data, want) {
		t.Fatalf("compacted log has %d octets, want %d", len(data), len(want))
	}
}

// crashFile keeps what was synced apart from what was only written, so a simulated
// crash can drop unsynced octets (all of them, or a torn part).
type crashFile struct {
	synced, pending []byte
}

func (f *crashFile) Write(b []byte) (int, error) {
	f.pending = append(f.pending, b...)
	return len(b), nil
}
func (f *crashFile) Sync() error {
	f.synced = append(f.synced, f.pending...)
	f.pending = f.pending[:0]
	return nil
}
func (f *crashFile) Close() error { return nil }

// crash returns what the disk holds after power loss: the synced octets and a prefix of
// the unsynced ones of length keep.
func (f *crashFile) crash(keep int) []byte {
	if keep > len(f.pending) {
		keep = len(f.pending)
	}
	return append(append([]byte(nil), f.synced...), f.pending[:keep]...)
}

func TestSimulatedCrashPoints(t *testing.T) {
	for _, policy := range []Policy{PolicyStrict, PolicyInterval, PolicyNone} {
		t.Run(policy.String(), func(t *testing.T) {
			lost := 0
			for crashAt := 1; crashAt <= 40; crashAt++ {
				f := &crashFile{}
				s := NewWithFile(f, policy)
				now := time.Unix(0, 0)
				acked := 0
				for batch := 0; batch < crashAt; batch++ {
					if err := s.Append(records(3), now); err != nil {
						t.Fatal(err)
					}
					now = now.Add(100 * time.Millisecond)
					acked += 3 // the driver acknowledges after Append returns
				}
				disk := f.crash(crashAt * 7 % 50)
				valid, _ := Scan(disk)
				recovered := 0
				for off := 0; off < len(valid); {
					_, _, n, _ := Next(valid[off:])
					off += n
					recovered++
				}
				if recovered < acked {
					lost += acked - recovered
				}
			}
			if policy == PolicyStrict && lost != 0 {
				t.Fatalf("strict policy lost %d acknowledged records across simulated crashes", lost)
			}
			t.Logf("policy %v: %d acknowledged records lost over 40 simulated power losses", policy, lost)
		})
	}
}

func TestRecoverSkipsDamageAndKeepsWhatFollows(t *testing.T) {
	data := records(10)
	one := len(AppendRecord(nil, KindTopic, []byte("record-000")))
	cases := map[string]struct {
		mutate  func([]byte) []byte
		keep    int // whole records kept
		regions int
	}{
		"intact":              {func(b []byte) []byte { return b }, 10, 0},
		"truncated tail":      {func(b []byte) []byte { return b[:len(b)-3] }, 9, 1},
		"flipped body bit":    {func(b []byte) []byte { b[3*one+12] ^= 1; return b }, 9, 1},
		"flipped crc":         {func(b []byte) []byte { b[7*one+5] ^= 0x80; return b }, 9, 1},
		"huge length":         {func(b []byte) []byte { b[2*one] = 0xff; return b }, 9, 1},
		"zero length":         {func(b []byte) []byte { copy(b[4*one:], []byte{0, 0, 0, 0}); return b }, 9, 1},
		"three flipped bits":  {func(b []byte) []byte { b[one+3] ^= 4; b[5*one+10] ^= 1; b[8*one+1] ^= 0x10; return b }, 7, 3},
		"garbage in between":  {func(b []byte) []byte { return append(append(b[:4*one:4*one], 1, 2, 3, 4, 5, 6, 7), data[4*one:]...) }, 10, 1},
		"garbage appended":    {func(b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) }, 10, 1},
		"two records smashed": {func(b []byte) []byte { copy(b[2*one+2:], make([]byte, one+4)); return b }, 8, 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), data...))
			valid, regions := Recover(b)
			if len(valid) != c.keep*one || len(regions) != c.regions {
				t.Fatalf("kept %d octets in %d regions, want %d records, %d regions: %+v", len(valid), len(regions), c.keep, c.regions, regions)
			}
			for off := 0; off < len(valid); {
				_, body, n, err := Next(valid[off:])
				if err != nil || !bytes.Contains(data, body) {
					t.Fatalf("kept a record that was never written at %d: %v", off, err)
				}
				off += n
			}
		})
	}
}

// A log of garbage is rejected in linear time (the resynchronisation's work is bounded).
func TestRecoverGarbageIsCheap(t *testing.T) {
	junk := make([]byte, 4<<20)
	for i := range junk {
		junk[i] = byte(i*7919>>3) ^ byte(i>>11)
	}
	for i := 0; i+9 < len(junk); i += 4096 {
		copy(junk[i:], []byte{0, 0x3f, 0, 0, 1, 2, 3, 4, byte(KindMsg)}) // plausible headers that fail their checksum
	}
	t0 := time.Now()
	valid, regions := Recover(junk)
	if len(valid) != 0 || len(regions) == 0 {
		t.Fatalf("kept %d octets of garbage", len(valid))
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("recovering 4 MiB of garbage took %v", d)
	}
}

func TestAppendRefusesWhatTheReaderWouldReject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.log")
	s, _, _, err := Open(path, PolicyNone)
	if err != nil {
		t.Fatal(err)
	}
	big := AppendRecord(nil, KindSession, make([]byte, MaxRecord+1))
	if err := s.Append(append(records(1), big...), time.Now()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: err %v", err)
	}
	if err := s.Append(records(2)[:len(records(2))-1], time.Now()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("torn batch: err %v", err)
	}
	ok := AppendRecord(nil, KindSession, make([]byte, MaxRecord))
	if err := s.Append(ok, time.Now()); err != nil {
		t.Fatalf("a record of exactly MaxRecord: %v", err)
	}
	s.Close()
	data, _ := os.ReadFile(path)
	if !bytes.Equal(data, ok) {
		t.Fatalf("log holds %d octets, want only the %d of the good record", len(data), len(ok))
	}
	if _, got, damage, err := Open(path, PolicyNone); err != nil || damage != nil || !bytes.Equal(got, ok) {
		t.Fatalf("reopen: %v %v", damage, err)
	}
}

func TestOpenKeepsRecordsAfterDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.log")
	data := records(20)
	one := len(AppendRecord(nil, KindTopic, []byte("record-000")))
	data[5*one+11] ^= 2
	os.WriteFile(path, data, 0o600)
	s, got, damage, err := Open(path, PolicyStrict)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if damage == nil || damage.Regions != 1 || damage.Offset != int64(5*one) || damage.Discarded != int64(one) || len(got) != 19*one {
		t.Fatalf("damage %+v, kept %d", damage, len(got))
	}
	// The file now holds exactly what was kept: a second start sees no damage.
	s.Close()
	if _, again, d2, err := Open(path, PolicyStrict); err != nil || d2 != nil || !bytes.Equal(again, got) {
		t.Fatalf("second open: %v %v", d2, err)
	}
}
