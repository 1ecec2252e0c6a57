// Package serialtest has helpers for tests of MQTT-SN over serial lines: pty pairs
// the broker and a client (or a test) can open as their devices.
package serialtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// PtyPair starts Debian's socat joining two pseudo-terminals and returns their
// device paths: what one end writes, the other reads. socat is stopped when the test
// ends; without socat the test is skipped with a plain NOT RUN.
func PtyPair(t testing.TB) (string, string) {
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
