package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Region is a damaged stretch of a log that recovery skipped.
type Region struct {
	Offset int64 // where the damage starts
	Len    int64 // octets skipped
	Err    error // why the record at Offset did not read
}

// known reports whether k is a kind this version writes. Resynchronisation only
// accepts records of known kinds, which makes a false match inside damage rarer.
func (k Kind) known() bool { return k >= KindSession && k <= KindMsgDel }

// Recover returns the valid records of data, in order, skipping every damaged stretch
// rather than stopping at the first: after a record that does not read, it looks for
// the next offset where a whole record with a valid checksum begins — first where the
// damaged record's own length says the next one starts (a flipped bit in a body leaves
// the framing intact), else octet by octet. A torn tail is one damaged region at the
// end. valid aliases data when nothing is damaged.
//
// The octet-by-octet search checksums candidate records; its total work is bounded to
// a multiple of len(data) (plus 1 MiB), past which the rest of data is given up as one
// region, so a log of garbage costs linear time to reject.
func Recover(data []byte) (valid []byte, damaged []Region) {
	budget := int64(len(data))*16 + 1<<20
	off := 0
	clean := true
	for off < len(data) {
		_, _, n, err := Next(data[off:])
		if err == nil {
			if !clean {
				valid = append(valid, data[off:off+n]...)
			}
			off += n
			continue
		}
		if clean {
			valid = append([]byte(nil), data[:off]...)
			clean = false
		}
		next := resync(data, off, &budget)
		damaged = append(damaged, Region{Offset: int64(off), Len: int64(next - off), Err: err})
		off = next
	}
	if clean {
		return data, nil
	}
	return valid, damaged
}

// resync returns the offset after the damaged record at off where reading resumes: the
// start of the next valid record, or len(data).
func resync(data []byte, off int, budget *int64) int {
	if len(data)-off >= frameHeader {
		size := int(binary.BigEndian.Uint32(data[off:]))
		if end := off + 8 + size; size >= 1 && size <= MaxRecord+1 && end <= len(data) {
			if end == len(data) {
				return end
			}
			if _, _, _, err := Next(data[end:]); err == nil {
				return end
			}
		}
	}
	for p := off + 1; p+frameHeader <= len(data); p++ {
		size := int(binary.BigEndian.Uint32(data[p:]))
		if size < 1 || size > MaxRecord+1 || p+8+size > len(data) || !Kind(data[p+8]).known() {
			continue
		}
		if *budget -= int64(size); *budget < 0 {
			return len(data)
		}
		if crc32.Checksum(data[p+8:p+8+size], castagnoli) == binary.BigEndian.Uint32(data[p+4:]) {
			return p
		}
	}
	return len(data)
}

// ErrTooLarge reports a record the reader would reject for its size.
var ErrTooLarge = errors.New("journal: record too large")

// Check verifies the framing of a batch of records before it is written: every record
// whole and no larger than MaxRecord, so the writer never stores what the reader
// would call damage. It does not recompute checksums (AppendRecord wrote them).
func Check(batch []byte) error {
	for off := 0; off < len(batch); {
		if len(batch)-off < frameHeader {
			return fmt.Errorf("%w: %d octets at offset %d are not a record", ErrCorrupt, len(batch)-off, off)
		}
		size := int(binary.BigEndian.Uint32(batch[off:]))
		if size < 1 || size > MaxRecord+1 {
			return fmt.Errorf("%w: %d octets at offset %d, max %d", ErrTooLarge, size-1, off, MaxRecord)
		}
		if off+8+size > len(batch) {
			return fmt.Errorf("%w: record at offset %d truncated", ErrCorrupt, off)
		}
		off += 8 + size
	}
	return nil
}
