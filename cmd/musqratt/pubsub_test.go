package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary three ways at once: the broker daemon, and
// `musqratt pub` and `musqratt sub` as separate processes talking to it over UDP, as
// a user's script would.

// daemon starts `musqratt serve` with the configuration text on a free loopback port
// and returns the port; the process is killed when the test ends.
func daemon(t *testing.T, conf string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "musqratt.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	cmd := exec.Command(os.Args[0], "serve", "-c", file, "--listen", "127.0.0.1:0", "--broadcast", "none")
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("broker log:\n%s", logs.String())
		}
	})
	return fmt.Sprint(waitListen(t, &logs).Port())
}

// runClient runs `musqratt ARGS...` to completion against the broker on port.
func runClient(t *testing.T, port string, stdinText string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "-h", "127.0.0.1", "-p", port)...)
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stdin = strings.NewReader(stdinText)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%v: %v", args, err)
	}
	return code, o.String(), e.String()
}

// pub runs `musqratt pub` and fails the test unless it exits 0.
func pub(t *testing.T, port string, args ...string) {
	t.Helper()
	if code, _, e := runClient(t, port, "", append([]string{"pub"}, args...)...); code != 0 {
		t.Fatalf("pub %v: exit %d\n%s", args, code, e)
	}
}

// subProc is a running `musqratt sub` whose output lines the test reads as they come.
type subProc struct {
	cmd   *exec.Cmd
	lines chan string
	errb  syncBuf
	done  chan int
}

// startSub starts `musqratt sub -d ARGS` and returns once it has subscribed to all
// its topics (it says so on stderr with -d).
func startSub(t *testing.T, port string, args ...string) *subProc {
	t.Helper()
	nTopics := 0
	for _, a := range args {
		if a == "-t" || a == "-T" {
			nTopics++
		}
	}
	cmd := exec.Command(os.Args[0], append(append([]string{"sub", "-d"}, args...), "-h", "127.0.0.1", "-p", port)...)
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	s := &subProc{cmd: cmd, lines: make(chan string, 100), done: make(chan int, 1)}
	cmd.Stderr = &s.errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	go func() {
		wg.Wait()
		cmd.Wait()
		s.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	for deadline := time.Now().Add(5 * time.Second); strings.Count(s.errb.String(), "subscribed to") < nTopics; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sub %v did not subscribe:\n%s", args, s.errb.String())
		}
	}
	return s
}

// expect reads the next lines and compares them with want, in order.
func (s *subProc) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := s.next(t); got != w {
			t.Fatalf("sub printed %q, want %q", got, w)
		}
	}
}

// exit waits for the sub to end and returns its exit code.
func (s *subProc) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-s.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("sub did not exit\n%s", s.errb.String())
		return -1
	}
}

const pubsubConf = `topic 7 sensors/seven
retry_interval 1s
`

func TestPubSubEveryQoSAndTopicKind(t *testing.T) {
	port := daemon(t, pubsubConf)
	sub := startSub(t, port, "-v", "-q", "2", "-C", "7", "-t", "sensors/+", "-t", "ab", "-T", "7")
	pub(t, port, "-t", "sensors/temp", "-m", "21.5", "-q", "0")
	pub(t, port, "-t", "sensors/temp", "-m", "21.6", "-q", "1")
	pub(t, port, "-t", "sensors/hum", "-m", "40", "-q", "2")
	pub(t, port, "-t", "ab", "-m", "short name", "-q", "1")
	pub(t, port, "-t", "ab", "-m", "connectionless", "-q", "-1")
	pub(t, port, "-T", "7", "-m", "by id", "-q", "-1")
	// The pre-defined id reaches the -T subscription and, by its name, the filter.
	sub.expect(t,
		"sensors/temp 21.5", "sensors/temp 21.6", "sensors/hum 40", "ab short name",
		"ab connectionless")
	// One delivery per subscriber even when two of its subscriptions match (the
	// pre-defined id and the filter covering its name), by either topic form.
	if got := sub.next(t); got != "7 by id" && got != "sensors/seven by id" {
		t.Errorf("pre-defined delivery printed %q", got)
	}
	pub(t, port, "-t", "sensors/last", "-m", "bye", "-q", "1")
	sub.expect(t, "sensors/last bye")
	if code := sub.exit(t); code != 0 {
		t.Errorf("sub -C 7 exit %d\n%s", code, sub.errb.String())
	}
}

// next returns the next line the sub prints.
func (s *subProc) next(t *testing.T) string {
	t.Helper()
	select {
	case got, ok := <-s.lines:
		if !ok {
			t.Fatalf("sub ended\n%s", s.errb.String())
		}
		return got
	case <-time.After(5 * time.Second):
		t.Fatalf("no line from sub\n%s", s.errb.String())
	}
	return ""
}

func TestPubMessageSources(t *testing.T) {
	port := daemon(t, pubsubConf)
	sub := startSub(t, port, "-q", "1", "-C", "5", "-t", "src/#")
	file := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(file, []byte("from a file"), 0o644)
	pub(t, port, "-t", "src/f", "-f", file, "-q", "1")
	if code, _, e := runClient(t, port, "all of\nstdin", "pub", "-t", "src/s", "-s", "-q", "1"); code != 0 {
		t.Fatalf("pub -s: %d %s", code, e)
	}
	if code, _, e := runClient(t, port, "line one\nline two\n", "pub", "-t", "src/l", "-l", "-q", "2"); code != 0 {
		t.Fatalf("pub -l: %d %s", code, e)
	}
	pub(t, port, "-t", "src/n", "-n")
	sub.expect(t, "from a file", "all of", "stdin", "line one", "line two")
	if code := sub.exit(t); code != 0 {
		t.Errorf("sub exit %d", code)
	}
}

func TestRetainedThroughCLI(t *testing.T) {
	port := daemon(t, pubsubConf)
	pub(t, port, "-t", "state/door", "-m", "open", "-r", "-q", "1")
	if code, out, e := runClient(t, port, "", "sub", "-t", "state/#", "-v", "-C", "1"); code != 0 || out != "state/door open\n" {
		t.Errorf("sub of a retained topic: exit %d %q %s", code, out, e)
	}
	// -R hides it; -W 1 then ends the wait with exit 27.
	if code, out, _ := runClient(t, port, "", "sub", "-t", "state/#", "-R", "-W", "1"); code != 27 || out != "" {
		t.Errorf("sub -R -W 1: exit %d %q", code, out)
	}
	// An empty retained message clears it.
	pub(t, port, "-t", "state/door", "-n", "-r", "-q", "1")
	if code, out, _ := runClient(t, port, "", "sub", "-t", "state/#", "-W", "1"); code != 27 || out != "" {
		t.Errorf("after clearing: exit %d %q", code, out)
	}
}

func TestSubWillOnKill(t *testing.T) {
	port := daemon(t, pubsubConf)
	watcher := startSub(t, port, "-v", "-q", "1", "-C", "1", "-t", "wills/#")
	dying := startSub(t, port, "-k", "1", "-t", "anything", "--will-topic", "wills/dying", "--will-payload", "it died", "--will-qos", "1")
	dying.cmd.Process.Signal(syscall.SIGKILL)
	watcher.expect(t, "wills/dying it died")
	if code := watcher.exit(t); code != 0 {
		t.Errorf("watcher exit %d", code)
	}
}

func TestSubSleepMode(t *testing.T) {
	port := daemon(t, pubsubConf)
	sleeper := startSub(t, port, "-c", "-i", "sleeper", "-q", "1", "-C", "3", "--sleep", "3s", "--wake", "1s", "-t", "night/+")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(sleeper.errb.String(), "asleep for"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sub --sleep did not go to sleep:\n%s", sleeper.errb.String())
		}
	}
	for i := range 3 {
		pub(t, port, "-t", "night/owl", "-m", fmt.Sprint("hoot ", i), "-q", "1")
	}
	sleeper.expect(t, "hoot 0", "hoot 1", "hoot 2")
	if code := sleeper.exit(t); code != 0 {
		t.Errorf("sleeper exit %d\n%s", code, sleeper.errb.String())
	}
	if !strings.Contains(sleeper.errb.String(), "woke") {
		t.Errorf("messages arrived without a wake-up:\n%s", sleeper.errb.String())
	}
}

func TestPubSubErrors(t *testing.T) {
	port := daemon(t, pubsubConf)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pub", "-m", "x"}, 2, "exactly one topic"},
		{[]string{"pub", "-t", "a", "-T", "7", "-m", "x"}, 2, "exactly one topic"},
		{[]string{"pub", "-t", "a"}, 2, "exactly one message source"},
		{[]string{"pub", "-t", "a", "-m", "x", "-q", "3"}, 2, "QoS is -1 to 2"},
		{[]string{"pub", "-t", "long/name", "-m", "x", "-q", "-1"}, 2, "pre-defined topic id or a short name"},
		{[]string{"pub", "-t", "a/+", "-m", "x"}, 2, "wildcard in a topic name"},
		{[]string{"pub", "-t", "a", "-m", "x", "--will-topic", "w/#"}, 2, "--will-topic"},
		{[]string{"pub", "-T", "99", "-m", "x", "-q", "1"}, 1, "invalid topic ID"},
		{[]string{"pub", "-T", "0", "-m", "x"}, 2, "1-65534"},
		{[]string{"pub", "-i", "an-id-longer-than-23-octets", "-t", "a", "-m", "x"}, 2, "1-23 octets"},
		{[]string{"sub"}, 2, "at least one topic"},
		{[]string{"sub", "-t", "a/#/b"}, 2, "'#' must be the last level"},
		{[]string{"sub", "-t", "a", "-q", "-1"}, 2, "QoS is 0 to 2"},
		{[]string{"sub", "-t", "a", "--sleep", "10ms"}, 2, "1 s to 65535 s"},
		{[]string{"pub", "-t", "a", "-m", "x", "extra"}, 2, "unexpected argument"},
	} {
		code, _, e := runClient(t, port, "", c.args...)
		if code != c.code || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, e)
		}
	}
}

// Nobody answers: pub gives up after its retries and says so plainly, exit 1.
func TestPubNoBroker(t *testing.T) {
	port := fmt.Sprint(freeUDPPort(t))
	start := time.Now()
	code, _, e := runClient(t, port, "", "pub", "-t", "a", "-m", "x", "--retry", "100ms", "--retries", "1")
	// On loopback the host answers with ICMP port unreachable: connection refused.
	if want := "musqratt pub: no MQTT-SN broker answered at 127.0.0.1:" + port + " (connection refused)\n"; code != 1 || e != want {
		t.Errorf("exit %d:\n%q\nwant\n%q", code, e, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return netip.MustParseAddrPort(c.LocalAddr().String()).Port()
}

// In process, help for each client command works and names the flags users script with.
func TestPubSubHelp(t *testing.T) {
	for _, name := range []string{"pub", "sub"} {
		for _, args := range [][]string{{"help", name}, {name, "-h"}, {name, "--help"}} {
			var o, e bytes.Buffer
			code := run(context.Background(), args, &o, io.Writer(&e))
			if code != 0 || !strings.Contains(e.String(), "Usage: musqratt "+name) || !strings.Contains(e.String(), "-will-topic") {
				t.Errorf("%v: exit %d\n%s", args, code, e.String())
			}
		}
	}
}

func listenLoopback() (*net.UDPConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

// Input is checked before CONNECT (exit 2), and an error after CONNECT (a refusal) ends
// the session with DISCONNECT: in neither case is the client's will published.
func TestNoWillAfterBadInputOrRefusal(t *testing.T) {
	port := daemon(t, pubsubConf+"allow * both wills/#\nallow * both ok/#\ndeny * both secret/#\n")
	watcher := startSub(t, port, "-v", "-t", "wills/#")
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte("x"), 70000), 0o644)
	will := func(name string) []string {
		return []string{"-k", "1", "--will-topic", "wills/" + name, "--will-payload", "published"}
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"sub", "-t", "a/#/b"}, will("badfilter")...), 2, "'#' must be the last level"},
		{append([]string{"pub", "-t", "a/+", "-m", "x"}, will("badname")...), 2, "wildcard in a topic name"},
		{append([]string{"pub", "-t", "ok/big", "-f", big}, will("bigfile")...), 2, "70000 octets"},
		{append([]string{"sub", "-t", "secret/x"}, will("subdenied")...), 1, "subscribe to \"secret/x\""},
		{append([]string{"pub", "-t", "secret/x", "-m", "x", "-q", "1"}, will("pubdenied")...), 1, "publish to \"secret/x\""},
	} {
		code, _, e := runClient(t, port, "", c.args...)
		if code != c.code || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, e)
		}
	}
	// A will would come 1.5 keep-alive periods after the client fell silent.
	time.Sleep(2500 * time.Millisecond)
	pub(t, port, "-t", "wills/marker", "-m", "end")
	watcher.expect(t, "wills/marker end")
}

// `sub -v` prints the name of a retained message on an exact topic, which arrives right
// behind the SUBACK that gives its id (issue 15: it printed "26 closed").
func TestSubVerboseRetainedExactTopic(t *testing.T) {
	port := daemon(t, pubsubConf)
	pub(t, port, "-t", "state/door", "-m", "closed", "-r")
	for i := range 5 {
		code, out, e := runClient(t, port, "", "sub", "-t", "state/door", "-v", "-C", "1", "-W", "5")
		if code != 0 || out != "state/door closed\n" {
			t.Fatalf("run %d: exit %d, printed %q\n%s", i, code, out, e)
		}
	}
}
