package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Reliability tests run a separately built, uninstrumented musqratt binary (the race
// detector would make each start take a second, and a crash test starts hundreds), so
// what is killed and flooded is the real daemon, at its real speed.

var kill9Cycles = flag.Int("kill9.cycles", 200, "kill -9 cycles in TestReliabilityKill9")

var (
	daemonBinOnce sync.Once
	daemonBinPath string
	daemonBinErr  error
)

// daemonBinary builds the musqratt command once per test binary.
func daemonBinary(t *testing.T) string {
	t.Helper()
	daemonBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "musqratt-bin")
		if err != nil {
			daemonBinErr = err
			return
		}
		daemonBinPath = filepath.Join(dir, "musqratt")
		out, err := exec.Command("go", "build", "-o", daemonBinPath, ".").CombinedOutput()
		if err != nil {
			daemonBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if daemonBinErr != nil {
		t.Fatal(daemonBinErr)
	}
	return daemonBinPath
}

// daemonProc is a running musqratt serve.
type daemonProc struct {
	cmd      *exec.Cmd
	port     string
	logs     *syncBuf
	killOnce sync.Once
}

var servingRE = regexp.MustCompile(`msg="musqratt serving MQTT-SN".* listen=127\.0\.0\.1:(\d+)`)

// startDaemon starts the built binary with conf on listen (127.0.0.1:PORT, or :0) and
// waits until it serves.
func startDaemon(t *testing.T, bin, conf, listen string, extra ...string) *daemonProc {
	t.Helper()
	args := append([]string{"serve", "-c", conf, "--listen", listen, "--broadcast", "none"}, extra...)
	cmd := exec.Command(bin, args...)
	logs := &syncBuf{}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if m := servingRE.FindStringSubmatch(line); m != nil && !sent {
				ready <- m[1]
				sent = true
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case port := <-ready:
		return &daemonProc{cmd: cmd, port: port, logs: logs}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("daemon did not start:\n%s", logs.String())
		return nil
	}
}

// kill9 kills the daemon with SIGKILL and reaps it; safe to call more than once and
// from several goroutines (a timer and the test).
func (d *daemonProc) kill9() {
	d.killOnce.Do(func() {
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.cmd.Wait()
	})
}

func (d *daemonProc) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}
