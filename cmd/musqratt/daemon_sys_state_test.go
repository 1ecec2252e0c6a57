package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// An idle daemon publishing $SYS every second does not keep writing its state file,
// and after a restart no $SYS value of the previous run is retained.
func TestStateFileHoldsNoSys(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.conf")
	state := filepath.Join(dir, "musqratt.journal")
	os.WriteFile(conf, []byte("broadcast none\nlisten 127.0.0.1:0\nsys_interval 1s\nstate_file "+state+"\n"), 0o644)

	_, stop := startServe(t, "-c", conf)
	size := func() int64 {
		fi, err := os.Stat(state)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// The first publication assigns the $SYS topics their ids (journalled once, as any
	// topic id is); after it, uptime changes every second and nothing more is written.
	time.Sleep(1500 * time.Millisecond)
	first := size()
	time.Sleep(3 * time.Second)
	if later := size(); later != first {
		t.Errorf("idle broker: state file grew from %d to %d octets in 3 s", first, later)
	}
	if code, logs := stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs)
	}

	// Restart with $SYS off: whatever the subscriber gets is from the state file.
	os.WriteFile(conf, []byte("broadcast none\nlisten 127.0.0.1:0\nsys_interval off\nstate_file "+state+"\n"), 0o644)
	srv, stop := startServe(t, "-c", conf)
	defer stop()
	sub := newSNClient(t, srv)
	sub.connect("sub")
	sub.send(packet.Packet{Type: packet.SUBSCRIBE, MsgID: 1, TopicName: []byte("$SYS/#")})
	if p := sub.recv(); p.Type != packet.SUBACK || p.ReturnCode != 0 {
		t.Fatalf("SUBACK %+v", p)
	}
	sub.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, _, err := sub.c.ReadFromUDPAddrPort(buf); err == nil {
		var p packet.Packet
		packet.Decode(buf[:n], &p)
		t.Errorf("after restart, before any $SYS publication, got %v %q %q", p.Type, p.TopicName, p.Data)
	}
}
