package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Kind is a record's type.
type Kind uint8

const (
	KindSession    Kind = 1 // a persistent session's metadata (replaces the previous one)
	KindSessionDel Kind = 2 // a session ended
	KindTopic      Kind = 3 // a topic id assignment
	KindRetain     Kind = 4 // a retained message (empty payload: cleared)
	KindMsg        Kind = 5 // a QoS 1/2 delivery owed to a persistent session (replaces same seq)
	KindMsgDel     Kind = 6 // that delivery completed or was dropped
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 9 // length, crc, kind

// MaxRecord bounds one record's body, so a corrupt length field cannot make recovery
// allocate gigabytes.
const MaxRecord = 16 << 20

// AppendRecord frames body as a record of kind k and appends it to dst.
func AppendRecord(dst []byte, k Kind, body []byte) []byte {
	n := len(body) + 1
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	crc := crc32.Update(crc32.Checksum([]byte{byte(k)}, castagnoli), castagnoli, body)
	dst = binary.BigEndian.AppendUint32(dst, crc)
	dst = append(dst, byte(k))
	return append(dst, body...)
}

// ErrCorrupt reports damage in a log: a truncated or mismatching record.
var ErrCorrupt = errors.New("journal: corrupt record")

// Next reads the record at the start of b. It returns the kind, the body (aliasing b),
// the number of octets consumed, or an error wrapping ErrCorrupt.
func Next(b []byte) (k Kind, body []byte, n int, err error) {
	if len(b) < frameHeader {
		return 0, nil, 0, fmt.Errorf("%w: %d octets left, a record header needs %d", ErrCorrupt, len(b), frameHeader)
	}
	size := int(binary.BigEndian.Uint32(b))
	if size < 1 || size > MaxRecord+1 {
		return 0, nil, 0, fmt.Errorf("%w: length %d out of range", ErrCorrupt, size)
	}
	if len(b) < 8+size {
		return 0, nil, 0, fmt.Errorf("%w: record of %d octets truncated at %d", ErrCorrupt, size, len(b)-8)
	}
	want := binary.BigEndian.Uint32(b[4:])
	if got := crc32.Checksum(b[8:8+size], castagnoli); got != want {
		return 0, nil, 0, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	return Kind(b[8]), b[9 : 8+size], 8 + size, nil
}

// Writer builds a record body field by field.
type Writer struct{ B []byte }

func (w *Writer) U8(v uint8)   { w.B = append(w.B, v) }
func (w *Writer) U16(v uint16) { w.B = binary.BigEndian.AppendUint16(w.B, v) }
func (w *Writer) U32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }
func (w *Writer) U64(v uint64) { w.B = binary.BigEndian.AppendUint64(w.B, v) }
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Bytes writes a length-prefixed octet string.
func (w *Writer) Bytes(b []byte) { w.U32(uint32(len(b))); w.B = append(w.B, b...) }

// String writes a length-prefixed string.
func (w *Writer) String(s string) { w.U32(uint32(len(s))); w.B = append(w.B, s...) }

// Reader reads a record body; the first error sticks and later reads return zeros.
type Reader struct {
	B   []byte
	Err error
}

func (r *Reader) take(n int) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || len(r.B) < n {
		r.Err = fmt.Errorf("%w: field of %d octets, %d left", ErrCorrupt, n, len(r.B))
		return nil
	}
	b := r.B[:n]
	r.B = r.B[n:]
	return b
}

func (r *Reader) U8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (r *Reader) U16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}
func (r *Reader) U32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
func (r *Reader) U64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
func (r *Reader) Bool() bool { return r.U8() != 0 }

// Bytes reads a length-prefixed octet string as a copy.
func (r *Reader) Bytes() []byte {
	n := int(r.U32())
	b := r.take(n)
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.take(int(r.U32()))) }
