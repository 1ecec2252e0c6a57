package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// startServe runs "musqratt serve" in-process with args and returns the address it
// serves and a function that stops it and returns its exit code and logs.
func startServe(t *testing.T, args ...string) (netip.AddrPort, func() (int, string)) {
	t.Helper()
	var out, logs syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), &out, &logs) }()
	srv := waitListen(t, &logs)
	code, stopped := -1, false
	return srv, func() (int, string) {
		cancel()
		if !stopped {
			select {
			case code = <-done:
				stopped = true
			case <-time.After(5 * time.Second):
				t.Fatalf("serve did not stop:\n%s", logs.String())
			}
		}
		return code, logs.String()
	}
}

type snClient struct {
	t   *testing.T
	c   *net.UDPConn
	srv netip.AddrPort
}

func newSNClient(t *testing.T, srv netip.AddrPort) *snClient {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &snClient{t: t, c: c, srv: srv}
}

func (c *snClient) send(p packet.Packet) {
	c.t.Helper()
	if _, err := c.c.WriteToUDPAddrPort(packet.Append(nil, &p), c.srv); err != nil {
		c.t.Fatal(err)
	}
}

func (c *snClient) recv() packet.Packet {
	c.t.Helper()
	buf := make([]byte, 2048)
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		c.t.Fatalf("nothing received: %v", err)
	}
	var p packet.Packet
	if err := packet.Decode(bytes.Clone(buf[:n]), &p); err != nil {
		c.t.Fatalf("% x: %v", buf[:n], err)
	}
	return p
}

func (c *snClient) connect(id string) {
	c.t.Helper()
	c.send(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 60, ClientID: []byte(id)})
	if p := c.recv(); p.Type != packet.CONNACK || p.ReturnCode != 0 {
		c.t.Fatalf("CONNACK %+v", p)
	}
}

// A retained message outlives the process when a state file is configured.
func TestStateFileKeepsRetainedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.conf")
	state := filepath.Join(dir, "state", "musqratt.journal")
	os.WriteFile(conf, []byte("topic 1 sensors/temp\nbroadcast none\nlisten 127.0.0.1:0\nstate_file "+state+"\n"), 0o644)

	srv, stop := startServe(t, "-c", conf)
	pub := newSNClient(t, srv)
	pub.connect("pub")
	pub.send(packet.Packet{Type: packet.PUBLISH, Flags: packet.FlagRetain.WithQoS(1).WithTopicIDType(packet.TopicPredefined), TopicID: 1, MsgID: 9, Data: []byte("21.5")})
	if p := pub.recv(); p.Type != packet.PUBACK || p.ReturnCode != 0 || p.MsgID != 9 {
		t.Fatalf("PUBACK %+v", p)
	}
	if code, logs := stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}
	if fi, err := os.Stat(state); err != nil || fi.Size() == 0 {
		t.Fatalf("state file: %v %v", fi, err)
	}

	srv, stop = startServe(t, "-c", conf)
	defer stop()
	sub := newSNClient(t, srv)
	sub.connect("sub")
	sub.send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicPredefined), MsgID: 1, TopicID: 1})
	var got []packet.Packet
	for range 2 {
		got = append(got, sub.recv())
	}
	var data string
	for _, p := range got {
		if p.Type == packet.PUBLISH {
			data = string(p.Data)
		}
	}
	if data != "21.5" {
		t.Errorf("after restart got %+v, want the retained 21.5", got)
	}
	code, logs := stop()
	if code != 0 || !strings.Contains(logs, "state restored") || !strings.Contains(logs, "state_file="+state) {
		t.Errorf("exit %d\n%s", code, logs)
	}
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	// A state file under a regular file cannot be created.
	code, _, errOut := runCmd("serve", "--listen", "127.0.0.1:0", "--broadcast", "none", "-c", writeConf(t, "state_file "+filepath.Join(dir, "file", "x")))
	if code != 1 || !strings.Contains(errOut, "cannot open the state file") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
}

func writeConf(t *testing.T, text string) string {
	f := filepath.Join(t.TempDir(), "m.conf")
	os.WriteFile(f, []byte(text+"\n"), 0o644)
	return f
}
