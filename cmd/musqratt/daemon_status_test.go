package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real daemon with --status-listen: /metrics counts the traffic a pub made, and
// the status page and pprof are served beside it.
func TestDaemonStatusServer(t *testing.T) {
	var logs syncBuf
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--broadcast", "none", "--status-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	port := waitListen(t, &logs).Port()
	urlRE := regexp.MustCompile(`url=(http://\S+/)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(logs.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no status server line:\n%s", logs.String())
		}
	}
	pub(t, strconv.Itoa(int(port)), "-t", "http/x", "-m", "v", "-q", "1")
	fetch := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if m := fetch("metrics"); !strings.Contains(m, "musqratt_publishes_received_total 1") || !strings.Contains(m, "musqratt_latency_end_to_end_seconds") {
		t.Errorf("/metrics:\n%s", m)
	}
	if p := fetch(""); !strings.Contains(p, "<title>MusQraTT status</title>") {
		t.Error("status page not served")
	}
	if p := fetch("debug/pprof/"); !strings.Contains(p, "heap") {
		t.Error("pprof index not served")
	}
}

// A status server that cannot bind stops the daemon at start, with the reason.
func TestDaemonStatusBindFailureIsFatal(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errOut := runCmd("serve", "--listen", "127.0.0.1:0", "--broadcast", "none", "--status-listen", busy.Addr().String())
	if code != 1 || !strings.Contains(errOut, "status_listen: cannot listen") || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// status_listen off loopback serves, with a warning that pprof is exposed.
func TestDaemonStatusWarnsOffLoopback(t *testing.T) {
	_, stop := startServe(t, "--listen", "127.0.0.1:0", "--broadcast", "none", "--status-listen", "0.0.0.0:0")
	_, logs := stop()
	if !strings.Contains(logs, "status_listen is not a loopback address") || !strings.Contains(logs, "pprof") {
		t.Errorf("no warning:\n%s", logs)
	}
	_, stop = startServe(t, "--listen", "127.0.0.1:0", "--broadcast", "none", "--status-listen", "127.0.0.1:0")
	if _, logs := stop(); strings.Contains(logs, "not a loopback address") {
		t.Errorf("warning on loopback:\n%s", logs)
	}
}
