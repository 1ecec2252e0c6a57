package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	floor "github.com/musqratt/musqratt/broker/relay"
	"github.com/musqratt/musqratt/net/serve"
)

// Fan-out: every message reaches each of the K subscribers, through the broker and
// through the floor relay alike.
func TestBenchFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	port := startBroker(t)
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "-n", "100", "-r", "2000", "-q", "1", "-k", "5", "--rounds", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b := benchLine(t, out)
	if b.Sent != 100 || b.Received != 500 || b.Lost != 0 || b.Floor.Received != 500 {
		t.Errorf("fan-out to 5: %+v", b)
	}
	if code, _, _ := runCmd("bench", "-k", "0"); code != 2 {
		t.Errorf("-k 0: exit %d", code)
	}
}

// Idle clients: the broker's RSS is read before and after, and a per-client figure
// printed. (The figure itself is for the bench to report, not for a test to judge.)
func TestBenchIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	port := startBroker(t)
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "--idle", "300")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^BENCH (.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no BENCH line:\n%s", out)
	}
	var r struct {
		Idle   int   `json:"idle_clients"`
		Before int64 `json:"rss_before"`
		After  int64 `json:"rss_after"`
	}
	if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Idle != 300 || r.Before <= 0 || r.After <= 0 || !strings.Contains(out, "per client") {
		t.Errorf("%+v\n%s", r, out)
	}
	// A port nobody serves: a plain error.
	if code, _, e := runCmd("bench", "-p", "1", "--idle", "10"); code != 1 || !strings.Contains(e, "--pid") {
		t.Errorf("no broker: exit %d %s", code, e)
	}
}

// The QoS 0 window: unpaced, at most W messages outstanding, so nothing overflows the
// socket buffers and every message arrives, through the broker and the floor alike.
func TestBenchWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	port := startBroker(t)
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "-n", "3000", "-r", "0", "-q", "0", "-w", "8", "-k", "2", "--rounds", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b := benchLine(t, out)
	if b.Sent != 3000 || b.Received != 6000 || b.Lost != 0 || b.Floor.Received != 6000 {
		t.Errorf("window 8, fan-out 2: %+v", b)
	}
	for _, bad := range [][]string{{"-w", "-1"}, {"-w", "4", "-q", "1"}} {
		if code, _, _ := runCmd(append([]string{"bench"}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// --floor-process: the floor relay runs as a child process (this test binary, run as
// the musqratt command), is measured the same way, and is gone when the bench ends.
func TestBenchFloorProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	port := startBroker(t)
	t.Setenv("MUSQRATT_TEST_MAIN", "1") // the child is this binary: make it run main
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "-n", "200", "-r", "2000", "-q", "1", "--rounds", "1", "--floor-process")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b := benchLine(t, out)
	if !b.FloorProc || b.Floor.Received != 200 || b.Received != 200 || !strings.Contains(out, "floor: a relay in its own process") {
		t.Errorf("--floor-process: %+v\n%s", b, out)
	}
	tr := filepath.Join(t.TempDir(), "bench.trace")
	if code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "-n", "50", "-r", "2000", "--rounds", "1", "--trace", tr); code != 0 {
		t.Fatalf("--trace: exit %d\n%s\n%s", code, out, errOut)
	}
	if st, err := os.Stat(tr); err != nil || st.Size() == 0 {
		t.Errorf("--trace wrote no trace: %v", err)
	}
	if code, out, _ := runCmd("relay", "-h"); code != 0 {
		t.Errorf("relay -h: exit %d %s", code, out)
	}
}

// --floor ADDR: the floor is a relay someone else runs (an image in relay mode); here
// the serve loop driving broker/relay's engine, as the image runs it.
func TestBenchExternalFloor(t *testing.T) {
	port := startBroker(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv := serve.New(&floor.Relay{}, serve.Options{}, pc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(port), "-n", "200", "-r", "2000", "-q", "1", "--rounds", "1", "--floor", pc.LocalAddr().String())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b := benchLine(t, out)
	if b.FloorAddr != pc.LocalAddr().String() || b.Floor.Received != 200 || b.Received != 200 || !strings.Contains(out, "floor: the relay at "+pc.LocalAddr().String()) {
		t.Errorf("--floor: %+v\n%s", b, out)
	}
	if st := srv.Stats(); st.Received < 200 {
		t.Errorf("the external floor handled %d datagrams", st.Received)
	}
}
