//go:build linux

package serial

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serial/serialtest"
)

// Through a real pty pair (Open's termios path on both ends): frames split, back to
// back and after noise come through in both directions.
func TestPty(t *testing.T) {
	a, b := serialtest.PtyPair(t)
	ba, err := Open(a, 115200, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	bb, err := Open(b, 115200, Options{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	time.Sleep(50 * time.Millisecond) // let socat see both ends open
	rng := rand.New(rand.NewPCG(3, 3))
	fs := mixed(60, rng)
	go func() {
		queued := 0
		for i, f := range fs {
			if i%10 == 5 {
				// Once what was queued has left, noise straight onto the line (not
				// through SendBatch), then a pause.
				for ba.Stats().TxOctets < uint64(queued) {
					time.Sleep(time.Millisecond)
				}
				ba.rw.Write(noise(30, rng))
				time.Sleep(2 * MinInterByteTimeout)
			}
			queued += len(f)
			if _, err := ba.SendBatch(packetsTo(ba, f)); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	}()
	got := receive(t, bb, len(fs))
	if lost := missing(got, fs); lost != nil {
		t.Fatalf("frames %v lost; stats %+v", lost, bb.Stats())
	}
	// And back.
	back := mixed(20, rng)
	go func() {
		for _, f := range back {
			bb.SendBatch(packetsTo(bb, f))
		}
	}()
	if lost := missing(receive(t, ba, len(back)), back); lost != nil {
		t.Fatalf("frames %v lost on the way back", lost)
	}
	t.Logf("line a→b: %+v", bb.Stats())
}

// The broker over a pty line joined with UDP, as the daemon will run it.
func TestEndToEndPty(t *testing.T) {
	a, b := serialtest.PtyPair(t)
	sb, err := Open(a, 115200, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	line, err := openRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Close() })
	to := serveBoth(t, sb)
	time.Sleep(50 * time.Millisecond)
	exchange(t, serialClient(t, "serial", line), udpClient(t, "udp", to))
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/dev/null", 115200, Options{}); err == nil {
		t.Error("Open(/dev/null) succeeded: not a terminal")
	}
	if _, err := Open("/nonexistent/tty", 115200, Options{}); err == nil {
		t.Error("Open of a missing device succeeded")
	}
	if _, err := Open("/dev/null", 12345, Options{}); err == nil {
		t.Error("Open at 12345 baud succeeded")
	}
}

// openRaw opens a pty end in raw mode as a plain file, for a client in a test.
func openRaw(name string) (*os.File, error) {
	b, err := Open(name, 115200, Options{})
	if err != nil {
		return nil, err
	}
	f := b.rw.(*os.File)
	// Hand the configured device over: stop the Bind's goroutines without closing it.
	fd, err := dupFile(f)
	b.Close()
	return fd, err
}

// A 20-octet PUBLISH through a pty pair opened at 115200 baud (a pty does not pace
// to its baud rate: this measures the software path; a real 115200 line carries at
// most 115200/10/20 = 576 such frames a second).
func BenchmarkPtyFrames(b *testing.B) {
	x, y := serialtest.PtyPair(b)
	bx, err := Open(x, 115200, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer bx.Close()
	by, err := Open(y, 115200, Options{Index: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer by.Close()
	benchFrames(b, bx, by)
}

// The floor for BenchmarkPtyFrames: the same octets raw through the same pty pair.
func BenchmarkPtyRaw(b *testing.B) {
	x, y := serialtest.PtyPair(b)
	fx, err := openRaw(x)
	if err != nil {
		b.Fatal(err)
	}
	defer fx.Close()
	fy, err := openRaw(y)
	if err != nil {
		b.Fatal(err)
	}
	defer fy.Close()
	benchRaw(b, fx, fy)
}
