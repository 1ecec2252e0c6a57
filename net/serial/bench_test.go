package serial

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/musqratt/musqratt/net/serve"
)

// The deframer alone: frames of the mixed stream per second of CPU.
func BenchmarkDeframe(b *testing.B) {
	fs := mixed(60, rand.New(rand.NewPCG(1, 1)))
	stream := bytes.Join(fs, nil)
	d := NewDeframer(0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for p := stream; len(p) > 0; {
			n := d.Write(p[:min(len(p), readChunk)])
			p = p[n:]
			for d.Next() != nil {
			}
		}
	}
	b.ReportMetric(float64(b.N*len(fs))/b.Elapsed().Seconds(), "frames/s")
}

// The floor for BenchmarkPipeFrames: the same octets raw through a pipe.
func BenchmarkPipeRaw(b *testing.B) {
	x, y := pipePair()
	defer x.Close()
	defer y.Close()
	benchRaw(b, x, y)
}

// A 20-octet PUBLISH through an in-process pipe, Bind to Bind.
func BenchmarkPipeFrames(b *testing.B) {
	x, y := pipePair()
	bx, _ := New(x, "x", Options{})
	by, _ := New(y, "y", Options{})
	defer bx.Close()
	defer by.Close()
	benchFrames(b, bx, by)
}

func benchFrames(b *testing.B, tx, rx *Bind) {
	f := publish(1, 13) // 20 octets
	out := []serve.Packet{{Buf: f, Addr: tx.Addr()}}
	in := packets(BatchSize, 100)
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	got := 0
	for b.Loop() {
		tx.SendBatch(out)
		for got < 1 {
			n, err := rx.ReceiveBatch(in)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		got--
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// The raw floor: the same 20 octets written and read back through the same kind of
// stream, with no framing.
func benchRaw(b *testing.B, w io.Writer, r io.Reader) {
	f := publish(1, 13)
	buf := make([]byte, len(f))
	b.SetBytes(int64(len(f)))
	next := make(chan bool)
	go func() { // a pipe's Write waits for its Read
		for range next {
			w.Write(f)
		}
	}()
	defer close(next)
	for b.Loop() {
		next <- true
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}
