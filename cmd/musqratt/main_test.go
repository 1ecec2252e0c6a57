package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this binary as the real musqratt command (main, signals,
// exit code): the test re-executes itself with MUSQRATT_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("MUSQRATT_TEST_MAIN") == "1" {
		os.Args = append([]string{"musqratt"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		code, out, _ := runCmd(arg)
		if code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, want := range []string{"MQTT-SN", "serve", "version", "help"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: usage lacks %q:\n%s", arg, want, out)
			}
		}
		for name := range subcommands {
			if !strings.Contains(out, "  "+name+" ") {
				t.Errorf("usage does not list %s", name)
			}
		}
	}
	if code, _, errOut := runCmd("help", "serve"); code != 0 || !strings.Contains(errOut, "--config") && !strings.Contains(errOut, "-config") {
		t.Errorf("help serve: exit %d\n%s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd("version")
	if code != 0 || !regexp.MustCompile(`^musqratt \S+ go1\.\S+ \w+/\w+\n$`).MatchString(out) {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runCmd("frob")
	if code != 2 || !strings.Contains(errOut, `unknown command "frob"`) || !strings.Contains(errOut, "Commands:") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

func TestServeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("# a comment\nmax_client 10\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"serve", "-c", filepath.Join(dir, "missing.conf")}, 1, "no such file"},
		{[]string{"serve", "-c", bad}, 1, bad + `:2: unknown key "max_client"; did you mean "max_clients"?`},
		{[]string{"--config", bad}, 1, `did you mean "max_clients"?`},
		{[]string{"serve", "--gateway-id", "0"}, 2, "--gateway-id 0: want 1 to 255"},
		{[]string{"serve", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"serve", "--log-format", "xml"}, 2, `--log-format "xml": want text or json`},
		{[]string{"serve", "--listen", "1883"}, 2, `--listen "1883": want host:port`},
		{[]string{"serve", "--check", "--listen", ":99999"}, 2, `--listen ":99999": port "99999" is not a number from 0 to 65535`},
		{[]string{"serve", "--broadcast", "10.0.0.255"}, 2, `--broadcast "10.0.0.255"`},
	} {
		code, _, errOut := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
		}
	}
}

func TestServeCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.conf")
	os.WriteFile(file, []byte("gateway_id 3\ntopic 1 sensors/temp\n"), 0o644)
	code, out, errOut := runCmd("serve", "-c", file, "--check", "--listen", "127.0.0.1:1884", "--listen", "[::]:1884,ipv6only", "--broadcast", "none", "--log-format", "json", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"listen 127.0.0.1:1884\nlisten [::]:1884 ipv6only\nbroadcast none\n", "gateway_id 3\n", "topic 1 sensors/temp\n", "log_level debug\nlog_format json\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--check output lacks %q:\n%s", want, out)
		}
	}
}

func TestServeBusyPollFlag(t *testing.T) {
	code, out, errOut := runCmd("serve", "--check", "--busy-poll", "2ms")
	if code != 0 || !strings.Contains(out, "busy_poll 2ms\n") {
		t.Fatalf("exit %d, output:\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCmd("serve", "--check"); code != 0 || !strings.Contains(out, "busy_poll off\n") {
		t.Fatalf("default: exit %d, output:\n%s", code, out)
	}
	code, _, errOut = runCmd("serve", "--check", "--busy-poll", "5s")
	if code != 2 || !strings.Contains(errOut, `--busy-poll "5s": want a duration from 1µs to 1s`) {
		t.Fatalf("--busy-poll 5s: exit %d, %s", code, errOut)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`listen=(\S+)`)

// waitListen waits for the startup line and returns the address served.
func waitListen(t *testing.T, logs *syncBuf) netip.AddrPort {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			ap, err := netip.ParseAddrPort(strings.Split(m[1], ",")[0])
			if err != nil {
				t.Fatalf("startup line: %v\n%s", err, logs.String())
			}
			return ap
		}
	}
	t.Fatalf("no startup line:\n%s", logs.String())
	return netip.AddrPort{}
}

func connack(t *testing.T, srv netip.AddrPort) []byte {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect := append([]byte{10, 0x04, 0x04, 0x01, 0x00, 0x3c}, "abcd"...)
	if _, err := c.WriteToUDPAddrPort(connect, srv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no CONNACK: %v", err)
	}
	return buf[:n]
}

func TestServeInProcess(t *testing.T) {
	var out, logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		// Tests send nothing off loopback: no broadcast.
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--broadcast", "none", "--gateway-id", "5"}, &out, &logs)
	}()
	srv := waitListen(t, &logs)
	if got := connack(t, srv); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
		t.Errorf("CONNACK % x", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("serve did not stop")
	}
	if s := logs.String(); !strings.Contains(s, "gateway_id=5") || !strings.Contains(s, "version=") {
		t.Errorf("startup line:\n%s", s)
	}
}

func TestServeListenFailure(t *testing.T) {
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errOut := runCmd("serve", "--listen", busy.LocalAddr().String(), "--broadcast", "none")
	if code != 1 || !strings.Contains(errOut, "cannot listen") || !strings.Contains(errOut, "address already in use") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}

// The real process: structured logs on stderr, a clean exit 0 on SIGINT and SIGTERM.
func TestSignalsStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		var logs syncBuf
		cmd := exec.Command(os.Args[0], "--listen", "127.0.0.1:0", "--broadcast", "none", "--log-format", "json")
		cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		jsonRE := regexp.MustCompile(`"listen":"([^"]+)"`)
		var srv netip.AddrPort
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !srv.IsValid(); time.Sleep(5 * time.Millisecond) {
			if m := jsonRE.FindStringSubmatch(logs.String()); m != nil {
				srv = netip.MustParseAddrPort(m[1])
			}
		}
		if !srv.IsValid() {
			cmd.Process.Kill()
			t.Fatalf("no startup line:\n%s", logs.String())
		}
		if got := connack(t, srv); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
			t.Errorf("CONNACK % x", got)
		}
		cmd.Process.Signal(sig)
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%v: %v\n%s", sig, err, logs.String())
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: did not exit", sig)
		}
		if s := logs.String(); !strings.Contains(s, `"msg":"musqratt stopped"`) {
			t.Errorf("%v: no shutdown line:\n%s", sig, s)
		}
	}
}
