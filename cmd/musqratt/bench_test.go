package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startBroker runs the real musqratt binary (this test binary, see TestMain) on a free
// loopback port and returns its port; the process is stopped at the end of the test.
func startBroker(t *testing.T) int {
	t.Helper()
	var logs syncBuf
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--broadcast", "none", "--log-format", "json")
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	re := regexp.MustCompile(`"listen":"127\.0\.0\.1:(\d+)"`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			port, _ := strconv.Atoi(m[1])
			return port
		}
	}
	t.Fatalf("no startup line:\n%s", logs.String())
	return 0
}

func benchLine(t *testing.T, out string) benchJSON {
	t.Helper()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "BENCH ") {
			line = strings.TrimPrefix(l, "BENCH ")
		}
	}
	if line == "" {
		t.Fatalf("no BENCH line:\n%s", out)
	}
	var b benchJSON
	if err := json.Unmarshal([]byte(line), &b); err != nil {
		t.Fatalf("BENCH line: %v\n%s", err, line)
	}
	return b
}

func TestBenchAgainstBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	port := startBroker(t)
	svg := filepath.Join(t.TempDir(), "cdf.svg")
	code, out, errOut := runCmd("bench", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-n", "300", "-r", "1000",
		"-q", "1", "--rounds", "1", "--plot", svg)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	b := benchLine(t, out)
	if b.QoS != 1 || b.N != 300 {
		t.Errorf("BENCH %+v", b)
	}
	if b.Sent != 300 || b.Received != b.Sent || b.Lost != 0 || b.Unacked != 0 {
		t.Errorf("target: sent %d received %d lost %d unacked %d", b.Sent, b.Received, b.Lost, b.Unacked)
	}
	if b.Floor.Sent != 300 || b.Floor.Received != 300 || b.Floor.Lost != 0 {
		t.Errorf("floor: %+v", b.Floor)
	}
	for _, k := range quantileNames {
		if _, ok := b.Latency[k]; !ok {
			t.Errorf("no %s in %v", k, b.Latency)
		}
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "<polyline") || !strings.HasSuffix(s, "</svg>\n") {
		t.Errorf("plot:\n%.300s", s)
	}
}

// QoS 2 and QoS 0 against the floor alone exercise the relay and the subscriber's
// QoS 2 handshake without a broker: the relay is the target too.
func TestBenchFloorQoS(t *testing.T) {
	r, err := startRelay()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for _, q := range []string{"0", "2"} {
		code, out, errOut := runCmd("bench", "-h", "127.0.0.1", "-p", strconv.Itoa(r.addr().Port), "-n", "50", "-r", "2000",
			"-q", q, "--rounds", "2", "-s", "64")
		if code != 0 {
			t.Fatalf("QoS %s: exit %d\n%s\n%s", q, code, out, errOut)
		}
		if b := benchLine(t, out); b.Sent != 100 || b.Received != 100 || b.Floor.Received != 100 {
			t.Errorf("QoS %s: %+v", q, b)
		}
	}
}

// -r 0: unpaced (throughput); QoS 1 keeps it lossless, one message in flight.
func TestBenchUnpaced(t *testing.T) {
	r, err := startRelay()
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	code, out, errOut := runCmd("bench", "-p", strconv.Itoa(r.addr().Port), "-n", "200", "-r", "0", "-q", "1", "--rounds", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if b := benchLine(t, out); b.Received != 200 || b.Late != 0 || b.SendRate <= 0 || b.RecvRate <= 0 {
		t.Errorf("%+v", b)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-q", "3"}, {"-s", "8"}, {"-n", "0"}, {"-r", "-1"}, {"--rounds", "0"}, {"extra"},
	} {
		if code, _, _ := runCmd(append([]string{"bench"}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "bench"}, {"bench", "--help"}} {
		if code, _, errOut := runCmd(args...); code != 0 || !strings.Contains(errOut, "BENCH {json}") || !strings.Contains(errOut, "-rounds") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
}

func TestQuantileOf(t *testing.T) {
	s := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]int64{0.5: 5, 0.9: 9, 0.99: 10, 1: 10, 0: 1} {
		if got := quantileOf(s, q); got != want {
			t.Errorf("q%v = %d, want %d", q, got, want)
		}
	}
	if quantileOf(nil, 0.5) != 0 {
		t.Error("empty")
	}
}
