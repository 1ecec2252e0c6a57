package packet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode checks, for any datagram, that
//
//   - Decode does not panic and does not write to the datagram;
//   - a rejection is an *Error with a Reason other than ReasonNone;
//   - an accepted datagram has a defined type, and Append of what was decoded decodes
//     again to the same message. Equality is semantic: the 3-octet Length of a short
//     message comes back in the 1-octet form, and a WILLTOPIC whose topic is empty comes
//     back as the 2-octet "empty" form, which has no Flags (reserved Ctrl bits of an
//     encapsulation are dropped too);
//   - Append's output is canonical: encoding it again gives the same octets, and Len
//     gives its length; a datagram already in that form comes back octet for octet.
//
// The seed corpus is testdata/fuzz/FuzzDecode: one file per message type, and malformed
// datagrams.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var p Packet
		err := Decode(b, &p)
		if !bytes.Equal(b, orig) {
			t.Fatalf("Decode modified its input: % x -> % x", orig, b)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == ReasonNone || int(e.Reason) >= NumReasons {
				t.Fatalf("Decode(% x) = %#v", b, err)
			}
			return
		}
		if !p.Type.Defined() || p.Type == ENCAPSULATED {
			t.Fatalf("Decode(% x) accepted type %v", b, p.Type)
		}
		if !p.Encapsulated && (p.Radius != 0 || p.NodeID != nil) {
			t.Fatalf("Decode(% x): not encapsulated but Radius %d NodeID %x", b, p.Radius, p.NodeID)
		}

		enc := Append(nil, &p)
		var q Packet
		if err := Decode(enc, &q); err != nil {
			t.Fatalf("Decode(% x) ok, but Decode(Append(...) = % x): %v", b, enc, err)
		}
		want := canonical(p)
		if d := diffPackets(&q, &want); d != nil {
			t.Fatalf("Decode(% x) -> Append -> % x -> Decode differs (re-decoded vs decoded):\n  %s", b, enc, strings.Join(d, "\n  "))
		}
		if again := Append(nil, &q); !bytes.Equal(again, enc) {
			t.Fatalf("Append is not canonical: % x then % x", enc, again)
		}
		if n := Len(&p); n != len(enc)-encapsulationLen(enc) {
			t.Fatalf("Len = %d, Append wrote % x", n, enc)
		}
		if canonicalForm(b) && !bytes.Equal(b, enc) {
			t.Fatalf("a datagram in canonical form re-encodes differently: % x -> % x", b, enc)
		}
	})
}

// canonical clears what the encoding of p cannot carry.
func canonical(p Packet) Packet {
	if (p.Type == WILLTOPIC || p.Type == WILLTOPICUPD) && len(p.WillTopic) == 0 {
		p.Flags = 0
	}
	return p
}

// encapsulationLen returns the length of the ENCAPSULATED header in front of the
// message in b, or 0.
func encapsulationLen(b []byte) int {
	if b[0] == 0x01 && Type(b[3]) == ENCAPSULATED {
		return int(b[1])<<8 | int(b[2])
	}
	if b[0] != 0x01 && Type(b[1]) == ENCAPSULATED {
		return int(b[0])
	}
	return 0
}

// canonicalForm reports whether the valid datagram b is in the form Append produces, so
// that Append of its decoding must give back exactly b: a 3-octet Length only when the
// message needs it, no reserved Ctrl bits, no Flags on an empty will topic.
func canonicalForm(b []byte) bool {
	hdr, n, t := 2, int(b[0]), Type(b[1])
	if b[0] == 0x01 {
		hdr, n, t = 4, int(b[1])<<8|int(b[2]), Type(b[3])
		if n-2 <= 255 {
			return false
		}
	}
	switch t {
	case ENCAPSULATED:
		return b[hdr]&^0x03 == 0 && canonicalForm(b[n:])
	case WILLTOPIC, WILLTOPICUPD:
		return n-hdr != 1
	}
	return true
}

// The seed corpus holds one valid message of every type, in the file format of go test.
func TestFuzzCorpusCoversEveryType(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	seen := map[Type]bool{}
	malformed := 0
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		head, val, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
		if !ok || head != "go test fuzz v1" || !strings.HasPrefix(val, "[]byte(") || !strings.HasSuffix(val, ")") {
			t.Fatalf("%s: not a go test fuzz v1 []byte file", name)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(val, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var p Packet
		if err := Decode([]byte(s), &p); err != nil {
			malformed++
			continue
		}
		seen[p.Type] = true
		if p.Encapsulated {
			seen[ENCAPSULATED] = true
		}
	}
	for _, typ := range Types {
		if !seen[typ] {
			t.Errorf("seed corpus has no valid %v", typ)
		}
	}
	if malformed < 10 {
		t.Errorf("seed corpus has %d malformed datagrams, want some of each kind", malformed)
	}
}
