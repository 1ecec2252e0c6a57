//go:build linux

package serial

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// ptyPair starts Debian's socat joining two ptys and returns their device names.
func ptyPair(t testing.TB) (string, string) {
	t.Helper()
	path, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("NOT RUN: socat missing (Debian package socat)")
	}
	cmd := exec.Command(path, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	re := regexp.MustCompile(`PTY is (\S+)`)
	var names []string
	sc := bufio.NewScanner(stderr)
	deadline := time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for len(names) < 2 && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
		if bytes.Contains(sc.Bytes(), []byte("starting data transfer loop")) {
			break
		}
	}
	if len(names) < 2 {
		t.Fatalf("socat named %d ptys", len(names))
	}
	go func() { // keep draining socat's log
		for sc.Scan() {
		}
	}()
	// socat opens the ptys' masters before it prints "starting data transfer loop";
	// wait until both slaves exist.
	for _, n := range names {
		for i := 0; ; i++ {
			if _, err := os.Stat(n); err == nil {
				break
			}
			if i > 100 {
				t.Fatalf("%s never appeared", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return names[0], names[1]
}

// Through a real pty pair (Open's termios path on both ends): frames split, back to
// back and after noise come through in both directions.
func TestPty(t *testing.T) {
	a, b := ptyPair(t)
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
	a, b := ptyPair(t)
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
	x, y := ptyPair(b)
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
	x, y := ptyPair(b)
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
