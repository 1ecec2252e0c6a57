package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/net/serial/serialtest"
)

// runSerialClient runs the binary as `musqratt ARGS` with no -h/-p.
func runSerialClient(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%v: %v", args, err)
	}
	return code, o.String(), e.String()
}

// `musqratt pub --serial` and `sub --serial` reach a daemon's serial_listen line
// through a socat pty pair, and exchange messages both ways with UDP clients.
func TestClientSerial(t *testing.T) {
	line, dev := serialtest.PtyPair(t)
	port := daemon(t, "serial_listen "+line+" 115200\n")

	// Serial pub → UDP sub.
	done := make(chan string, 1)
	go func() {
		_, out, errOut := runClient(t, port, "", "sub", "-t", "se", "-C", "2", "-W", "10", "-q", "1")
		done <- out + errOut
	}()
	time.Sleep(500 * time.Millisecond) // the subscriber connects and subscribes
	if code, _, errOut := runSerialClient(t, "pub", "--serial", dev, "-t", "se", "-m", "hi", "-q", "1"); code != 0 {
		t.Fatalf("pub --serial: exit %d: %s", code, errOut)
	}
	// QoS -1 over the line: no connection, a short name.
	if code, _, errOut := runSerialClient(t, "pub", "--serial", dev, "-t", "se", "-m", "minus", "-q", "-1"); code != 0 {
		t.Fatalf("pub --serial -q -1: exit %d: %s", code, errOut)
	}
	select {
	case out := <-done:
		if out != "hi\nminus\n" {
			t.Fatalf("UDP subscriber printed %q", out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("UDP subscriber got nothing")
	}

	// UDP pub → serial sub.
	subDone := make(chan [2]string, 1)
	go func() {
		code, out, errOut := runSerialClient(t, "sub", "--serial", dev, "-t", "se", "-C", "1", "-W", "10", "-q", "1")
		subDone <- [2]string{out, fmt.Sprintf("exit %d: %s", code, errOut)}
	}()
	time.Sleep(time.Second)
	if code, _, errOut := runClient(t, port, "", "pub", "-t", "se", "-m", "to the line", "-q", "1"); code != 0 {
		t.Fatalf("pub: exit %d: %s", code, errOut)
	}
	select {
	case r := <-subDone:
		if strings.TrimSpace(r[0]) != "to the line" {
			t.Fatalf("serial subscriber printed %q (%s)", r[0], r[1])
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serial subscriber got nothing")
	}

	// -h or -p with --serial is a flag error, before anything is opened.
	for _, extra := range [][]string{{"-h", "127.0.0.1"}, {"-p", port}} {
		args := append([]string{"pub", "--serial", dev, "-t", "se", "-m", "x"}, extra...)
		if code, _, errOut := runSerialClient(t, args...); code != 2 || !strings.Contains(errOut, "--serial") {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if code, _, errOut := runSerialClient(t, "pub", "--baud", "9600", "-t", "se", "-m", "x"); code != 2 {
		t.Errorf("--baud without --serial: exit %d: %s", code, errOut)
	}
}
