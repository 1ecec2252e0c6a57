package kernel

import (
	"bytes"
	"context"
	"github.com/musqratt/musqratt/broker/packet"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func udp(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func local(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func read(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%v: nothing received: %v", local(c), err)
	}
	return buf[:n]
}

// connect is an MQTT-SN CONNECT: Length, MsgType 0x04, Flags (CleanSession), ProtocolId
// 0x01, Duration 60 s, ClientId.
func connect(clientID string) []byte {
	return append([]byte{byte(6 + len(clientID)), 0x04, 0x04, 0x01, 0x00, 0x3c}, clientID...)
}

// runKernel starts Run over conns and returns a stop function that checks Run's result.
func runKernel(t *testing.T, cfg Config, logs *syncBuffer, conns ...net.PacketConn) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if len(conns) == 1 {
			done <- Run(ctx, cfg, conns[0], logger)
		} else {
			done <- RunConns(ctx, cfg, conns, logger)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestRunEndToEnd(t *testing.T) {
	srv := udp(t, "127.0.0.1:0")
	client := udp(t, "127.0.0.1:0")
	bcast := udp(t, "127.0.0.1:0") // stands in for the broadcast address: tests stay on loopback
	cfg, err := ParseConfig("test.conf", strings.NewReader("gateway_id 7\nbroadcast "+local(bcast).String()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Version = "test"
	var logs syncBuffer
	stop := runKernel(t, cfg, &logs, srv)

	// ADVERTISE goes out at once: Length 5, type 0x00, GwId 7, Duration 900 s.
	if got, want := read(t, bcast), []byte{0x05, 0x00, 0x07, 0x03, 0x84}; !bytes.Equal(got, want) {
		t.Errorf("ADVERTISE % x, want % x", got, want)
	}
	if _, err := client.WriteToUDPAddrPort(connect("abcd"), local(srv)); err != nil {
		t.Fatal(err)
	}
	if got, want := read(t, client), []byte{0x03, 0x05, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("CONNACK % x, want % x", got, want)
	}
	stop()
	out := logs.String()
	for _, want := range []string{
		`msg="musqratt serving MQTT-SN" version=test listen=127.0.0.1:`,
		"gateway_id=7",
		`msg="client connect" client=abcd`,
		`msg="musqratt stopped" datagrams_in=1 datagrams_out=2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// An ADVERTISE period below the spec's 15 minutes is served, with a warning.
func TestRunWarnsOnShortAdvertiseInterval(t *testing.T) {
	srv := udp(t, "127.0.0.1:0")
	cfg, err := ParseConfig("test.conf", strings.NewReader("broadcast 127.255.255.255:1\nadvertise_interval 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	stop := runKernel(t, cfg, &logs, srv)
	stop()
	if out := logs.String(); !strings.Contains(out, "advertise_interval is below the 15 minutes") {
		t.Errorf("no warning for advertise_interval 1s:\n%s", out)
	}
}

func TestRunLimitIsLoggedAndAnswered(t *testing.T) {
	srv := udp(t, "127.0.0.1:0")
	cfg, err := ParseConfig("test.conf", strings.NewReader("max_clients 1\nbroadcast none\nadvertise_interval off\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	stop := runKernel(t, cfg, &logs, srv)
	c1, c2 := udp(t, "127.0.0.1:0"), udp(t, "127.0.0.1:0")
	c1.WriteToUDPAddrPort(connect("one"), local(srv))
	if got := read(t, c1); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
		t.Fatalf("first CONNACK % x", got)
	}
	c2.WriteToUDPAddrPort(connect("two"), local(srv))
	if got := read(t, c2); !bytes.Equal(got, []byte{0x03, 0x05, 0x01}) {
		t.Fatalf("CONNACK beyond max_clients % x, want 03 05 01 (congestion)", got)
	}
	stop()
	if out := logs.String(); !strings.Contains(out, `msg="limit reached" limit=clients client=two`) {
		t.Errorf("limit not logged:\n%s", out)
	}
}

func TestRunConnsServesEveryAddress(t *testing.T) {
	s4 := udp(t, "127.0.0.1:0")
	s6 := udp(t, "[::1]:0")
	cfg, err := ParseConfig("test.conf", strings.NewReader("broadcast none\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	runKernel(t, cfg, &logs, s4, s6)
	c4, c6 := udp(t, "127.0.0.1:0"), udp(t, "[::1]:0")
	c4.WriteToUDPAddrPort(connect("v4"), local(s4))
	c6.WriteToUDPAddrPort(connect("v6"), local(s6))
	for _, c := range []*net.UDPConn{c4, c6} {
		if got := read(t, c); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
			t.Errorf("%v: CONNACK % x", local(c), got)
		}
	}
}

func TestRunRejectsBadEngineConfig(t *testing.T) {
	srv := udp(t, "127.0.0.1:0")
	cfg := Default()
	cfg.Broker.InflightWindow = 5000
	if err := Run(context.Background(), cfg, srv, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "inflight window") {
		t.Errorf("got %v", err)
	}
	if err := RunConns(context.Background(), Default(), nil, nil); err == nil {
		t.Error("no conns: no error")
	}
}

// With broadcast none the engine sends no ADVERTISE (none is counted as sent), and
// SEARCHGW is still answered with GWINFO to the searcher.
func TestRunNoAdvertiseWithoutBroadcast(t *testing.T) {
	srv, cli := udp(t, "127.0.0.1:0"), udp(t, "127.0.0.1:0")
	cfg, err := ParseConfig("test.conf", strings.NewReader("broadcast none\nadvertise_interval 1s\nsys_interval off\n"))
	if err != nil {
		t.Fatal(err)
	}
	var m *Metrics
	ready := make(chan struct{})
	cfg.OnServing = func(mm *Metrics) { m = mm; close(ready) }
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)
	<-ready
	cli.WriteToUDPAddrPort([]byte{3, 0x01, 0}, local(srv)) // SEARCHGW, radius 0
	if got := read(t, cli); len(got) < 3 || got[1] != 0x02 {
		t.Fatalf("SEARCHGW answered %x, want GWINFO", got)
	}
	time.Sleep(1200 * time.Millisecond) // past one advertise_interval
	if n := m.Stats().OutByType[packet.ADVERTISE]; n != 0 {
		t.Errorf("%d ADVERTISE counted as sent with broadcast none", n)
	}
}
