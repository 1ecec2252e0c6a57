package journal

import "testing"

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
