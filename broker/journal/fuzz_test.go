package journal

import (
	"bytes"
	"testing"
)

// FuzzScan: any octets scan without panic into a prefix of whole, valid records.
func FuzzScan(f *testing.F) {
	f.Add(records(3))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		valid, err := Scan(data)
		if len(valid) > len(data) || (err == nil && len(valid) != len(data)) {
			t.Fatalf("Scan kept %d of %d octets, err %v", len(valid), len(data), err)
		}
		for off := 0; off < len(valid); {
			_, _, n, err := Next(valid[off:])
			if err != nil {
				t.Fatalf("valid prefix has a bad record at %d: %v", off, err)
			}
			off += n
		}
	})
}

// FuzzRecover: any octets recover without panic into whole, valid records; an
// undamaged log comes back whole; every record kept was in the input.
func FuzzRecover(f *testing.F) {
	f.Add(records(3))
	f.Add(append(records(2), append([]byte{9, 9, 9}, records(2)...)...))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		valid, regions := Recover(data)
		if _, err := Scan(data); err == nil && (len(regions) != 0 || len(valid) != len(data)) {
			t.Fatalf("an undamaged log lost octets: %d of %d, %d regions", len(valid), len(data), len(regions))
		}
		var skipped int64
		for _, r := range regions {
			skipped += r.Len
		}
		if int64(len(valid))+skipped != int64(len(data)) {
			t.Fatalf("kept %d + skipped %d != %d", len(valid), skipped, len(data))
		}
		for off := 0; off < len(valid); {
			_, _, n, err := Next(valid[off:])
			if err != nil {
				t.Fatalf("kept a bad record at %d: %v", off, err)
			}
			if !bytes.Contains(data, valid[off:off+n]) {
				t.Fatalf("kept a record that is not in the input at %d", off)
			}
			off += n
		}
	})
}
