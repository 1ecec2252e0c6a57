package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStatsCommand(t *testing.T) {
	port := daemon(t, "sys_interval 100ms\n")
	sub := startSub(t, port, "-t", "s/#", "-q", "1", "-C", "3")
	for range 3 {
		pub(t, port, "-t", "s/x", "-m", "v", "-q", "1")
	}
	sub.exit(t)
	time.Sleep(300 * time.Millisecond) // one more $SYS round after the traffic
	code, out, e := runClient(t, port, "", "stats")
	if code != 0 {
		t.Fatalf("stats: exit %d\n%s", code, e)
	}
	for _, re := range []string{
		`(?m)^\$SYS/broker/version musqratt \S+`,
		`(?m)^\$SYS/broker/publish/messages/received [3-9]\d*$`,
		`(?m)^\$SYS/broker/uptime \d+ seconds$`,
		`(?m)^\$SYS/broker/latency/end_to_end/p99_us \d+\.\d$`,
		`(?m)^\$SYS/broker/clients/connected [1-9]$`, // stats itself
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stats output lacks %s:\n%s", re, out)
		}
	}
	// With $SYS off there is nothing to read: a plain error, exit 1.
	quietPort := daemon(t, "sys_interval off\n")
	if code, _, e := runClient(t, quietPort, "", "stats", "-W", "500ms"); code != 1 || !strings.Contains(e, "sys_interval off") {
		t.Errorf("stats against sys_interval off: exit %d\n%s", code, e)
	}
}

// SIGUSR1 makes the daemon write the metrics dump on stderr and keep serving.
func TestSIGUSR1Dump(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.conf")
	os.WriteFile(file, []byte("sys_interval off\n"), 0o644)
	var logs syncBuf
	cmd := exec.Command(os.Args[0], "serve", "-c", file, "--listen", "127.0.0.1:0", "--broadcast", "none")
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ps := fmt.Sprint(waitListen(t, &logs).Port())
	pub(t, ps, "-t", "d/x", "-m", "v", "-q", "1")
	cmd.Process.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "latency_end_to_end"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no dump after SIGUSR1:\n%s", logs.String())
		}
	}
	dump := logs.String()
	for _, want := range []string{"== musqratt, up ", "publishes_received_total", `clients{state="active"}`, "histogram (µs)"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
	pub(t, ps, "-t", "d/x", "-m", "still serving", "-q", "1")
}
