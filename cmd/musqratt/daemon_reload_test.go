//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// waitLog waits until logs holds n occurrences of want.
func waitLog(t *testing.T, logs *syncBuf, want string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); strings.Count(logs.String(), want) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %d× %q:\n%s", n, want, logs.String())
		}
	}
}

// kill -HUP reloads the file as Mosquitto does: a changed access rule applies to a
// session that stays connected, a key that needs a restart is named, and a file that
// does not parse is reported with its file:line and changes nothing.
func TestSIGHUPReloadsConfiguration(t *testing.T) {
	file := filepath.Join(t.TempDir(), "m.conf")
	os.WriteFile(file, []byte("sys_interval off\n"), 0o644)
	var logs syncBuf
	cmd := exec.Command(os.Args[0], "serve", "-c", file, "--listen", "127.0.0.1:0", "--broadcast", "none")
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := newSNClient(t, waitListen(t, &logs))
	c.connect("hup")
	sub := func(id uint16, filter string) packet.ReturnCode {
		t.Helper()
		c.send(packet.Packet{Type: packet.SUBSCRIBE, MsgID: id, TopicName: []byte(filter)})
		p := c.recv()
		if p.Type != packet.SUBACK {
			t.Fatalf("SUBSCRIBE %s: got %v", filter, p.Type)
		}
		return p.ReturnCode
	}
	if rc := sub(1, "secret/a"); rc != packet.Accepted {
		t.Fatalf("before the reload: SUBACK %v", rc)
	}

	os.WriteFile(file, []byte("sys_interval off\nmax_clients 7\ndeny * subscribe secret/#\nallow * subscribe public/#\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, &logs, `msg="configuration reloaded" applied=allow,deny`, 1)
	if rc := sub(2, "secret/b"); rc != packet.NotSupported {
		t.Errorf("after the reload: SUBACK %v for a denied filter, want not supported", rc)
	}
	if rc := sub(3, "public/b"); rc != packet.Accepted {
		t.Errorf("after the reload: SUBACK %v for an allowed filter", rc)
	}
	waitLog(t, &logs, "keys=max_clients", 1)

	os.WriteFile(file, []byte("sys_interval off\nmax_client 7\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, &logs, `configuration reload failed; keeping the current configuration" err="`+file+`:2: unknown key \"max_client\"`, 1)
	if rc := sub(4, "secret/c"); rc != packet.NotSupported {
		t.Errorf("after a failed reload: SUBACK %v, want the rules kept", rc)
	}
	c.send(packet.Packet{Type: packet.PINGREQ})
	if p := c.recv(); p.Type != packet.PINGRESP {
		t.Errorf("PINGREQ: got %v", p.Type)
	}
	if cmd.ProcessState != nil || strings.Contains(logs.String(), "musqratt stopped") {
		t.Fatalf("the daemon stopped on SIGHUP:\n%s", logs.String())
	}
}
