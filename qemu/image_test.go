package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// notRun skips the test saying plainly that it was not run and why, or,
// when MUSQRATT_IMAGE_TESTS=require (for CI machines that have QEMU and the
// TamaGo toolchain), fails it.
func notRun(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("MUSQRATT_IMAGE_TESTS") == "require" {
		t.Fatalf("image test required (MUSQRATT_IMAGE_TESTS=require) but cannot run: %s", msg)
	}
	t.Skipf("NOT RUN: %s", msg)
}

// image builds the image for m, or skips the test saying plainly what is
// missing: these tests need the TamaGo toolchain and QEMU.
func image(t *testing.T, m Machine) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("NOT RUN: %s image test skipped in -short mode", m.Board)
	}
	if err := Available(m); err != nil {
		notRun(t, "%s image test needs QEMU: %v", m.Board, err)
	}
	ctx := context.Background()
	mod, err := ModuleDir(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	tamago, err := Toolchain(ctx, mod)
	if err != nil {
		notRun(t, "%s image test needs the TamaGo toolchain: %v", m.Board, err)
	}
	out := filepath.Join(t.TempDir(), "musqratt-"+m.Board+".elf")
	t0 := time.Now()
	if err := Build(ctx, tamago, mod, m, out); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s image: %d bytes, built in %v", m.Board, fi.Size(), time.Since(t0).Round(time.Millisecond))
	return out
}

func TestMX6ULLEVKEcho(t *testing.T) { testEcho(t, MX6ULLEVK) }

func TestUSBArmoryEcho(t *testing.T) { testEcho(t, USBArmory) }

func TestMicrovmEcho(t *testing.T) { testEcho(t, Microvm) }

// testEcho boots m's image and echoes 400 datagrams through the forwarded
// port, one at a time, reporting boot-to-ready and round-trip times.
func testEcho(t *testing.T, m Machine) {
	img := image(t, m)
	var console strings.Builder
	in, err := Boot(context.Background(), Config{Machine: m, Image: img, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := in.Close(); err != nil {
			t.Error(err)
		}
		console.WriteString(in.Console())
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	}()
	t.Logf("ready %v after QEMU started; UDP %v", in.ReadyAfter.Round(time.Millisecond), in.Addr)

	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(in.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Warm up: the first datagram after boot can be slow or lost while QEMU
	// resolves the guest.
	if _, err := echo(c, []byte("warm-up"), 10, time.Second); err != nil {
		t.Fatalf("no echo after boot: %v", err)
	}

	const n = 400
	var rtts []time.Duration
	lost := 0
	for i := range n {
		msg := fmt.Appendf(nil, "musqratt echo %d", i)
		d, err := echo(c, msg, 1, 500*time.Millisecond)
		if err != nil {
			lost++
			continue
		}
		rtts = append(rtts, d)
	}
	if lost > n/100 {
		t.Fatalf("%d of %d echoes lost", lost, n)
	}
	slices.Sort(rtts)
	q := func(p float64) time.Duration { return rtts[int(p*float64(len(rtts)-1))] }
	t.Logf("echo: %d of %d back; round trip p50 %v p90 %v p99 %v max %v",
		len(rtts), n, q(0.5), q(0.9), q(0.99), rtts[len(rtts)-1])
}

// echo sends msg and waits for the same bytes back, up to tries times.
func echo(c *net.UDPConn, msg []byte, tries int, wait time.Duration) (time.Duration, error) {
	buf := make([]byte, 2048)
	for range tries {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		c.SetReadDeadline(t0.Add(wait))
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return 0, err
			}
			if string(buf[:n]) == string(msg) {
				return time.Since(t0), nil
			}
			// a late echo of an earlier try: keep reading
		}
	}
	return 0, fmt.Errorf("no echo of %q after %d tries", msg, tries)
}

// TestExitStatus: an image that fails at boot stops QEMU with a non-zero
// status (semihosting on arm, isa-debug-exit on amd64), so a crash never
// passes for a success.
func TestExitStatus(t *testing.T) {
	for _, m := range []Machine{MX6ULLEVK, Microvm} {
		t.Run(m.Board, func(t *testing.T) { testExitStatus(t, m) })
	}
}

func testExitStatus(t *testing.T, m Machine) {
	if testing.Short() {
		t.Skipf("NOT RUN: %s image test skipped in -short mode", m.Board)
	}
	if err := Available(m); err != nil {
		notRun(t, "%s image test needs QEMU: %v", m.Board, err)
	}
	ctx := context.Background()
	mod, err := ModuleDir(ctx, ".")
	if err != nil {
		t.Fatal(err)
	}
	tamago, err := Toolchain(ctx, mod)
	if err != nil {
		notRun(t, "%s image test needs the TamaGo toolchain: %v", m.Board, err)
	}
	img := filepath.Join(t.TempDir(), "bad-port.elf")
	if err := Build(ctx, tamago, mod, m, img, "-X", "main.Port=no-such-port"); err != nil {
		t.Fatal(err)
	}
	in, err := Boot(ctx, Config{Machine: m, Image: img, ReadyLine: "musqratt: stopped:"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	select {
	case <-in.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("QEMU still running after the image stopped; console:\n%s", in.Console())
	}
	if got, want := in.ExitCode(), m.ExitStatus(1); got != want {
		t.Fatalf("QEMU exit status %d, want %d; console:\n%s", got, want, in.Console())
	}
}
