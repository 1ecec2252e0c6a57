package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
func image(t *testing.T, m Machine, ldflags ...string) string {
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
	if err := Build(ctx, tamago, mod, m, out, ldflags...); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s image: %d bytes, built in %v", m.Board, fi.Size(), time.Since(t0).Round(time.Millisecond))
	return out
}

// bootImage builds the image for m with ldflags and boots it, or skips the test
// saying what is missing. QEMU is stopped when the test ends; a failed test logs the
// whole console.
func bootImage(t *testing.T, m Machine, ldflags ...string) *Instance {
	t.Helper()
	img := image(t, m, ldflags...)
	in, err := Boot(context.Background(), Config{Machine: m, Image: img, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("console:\n%s", in.Console())
		}
	})
	t.Logf("ready %v after QEMU started; UDP %v", in.ReadyAfter.Round(time.Millisecond), in.Addr)
	return in
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
	bootFailing(t, m, img)
}

// bootFailing boots img, whose boot must fail: the image prints its "musqratt:
// stopped:" line and QEMU exits with the image's status 1. It returns the console.
func bootFailing(t *testing.T, m Machine, img string) string {
	t.Helper()
	in, err := Boot(context.Background(), Config{Machine: m, Image: img, ReadyLine: "musqratt: stopped:"})
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
	return in.Console()
}
