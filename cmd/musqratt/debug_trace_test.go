package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// packetLines are the -d lines that trace a packet, as "-> TYPE" / "<- TYPE".
func packetLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "-> ") || strings.HasPrefix(l, "<- ") {
			out = append(out, strings.Join(strings.Fields(l)[:2], " "))
		}
	}
	return out
}

// pub -d prints one line per packet sent and received, as mqtt-sn-tools' -d does.
func TestPubDebugTracesEveryPacket(t *testing.T) {
	port := daemon(t, pubsubConf)
	code, _, e := runClient(t, port, "", "pub", "-d", "-t", "trace/q2", "-m", "hello", "-q", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	want := []string{"-> CONNECT", "<- CONNACK", "-> REGISTER", "<- REGACK", "-> PUBLISH",
		"<- PUBREC", "-> PUBREL", "<- PUBCOMP", "-> DISCONNECT", "<- DISCONNECT"}
	if got := packetLines(e); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("pub -d -q 2 traced\n%v\nwant\n%v\nstderr:\n%s", got, want, e)
	}
	for _, re := range []string{
		`(?m)^-> CONNECT client_id="musqratt-pub-\d+" clean=1 will=0 keepalive=60$`,
		`(?m)^<- CONNACK rc="accepted"$`,
		`(?m)^-> REGISTER id=(\d+) topic_id=0 topic="trace/q2"$`,
		`(?m)^-> PUBLISH id=\d+ topic_id=[1-9]\d* qos=2 retain=0 dup=0 len=5$`,
		`(?m)^<- PUBREC id=\d+$`,
	} {
		if !regexp.MustCompile(re).MatchString(e) {
			t.Errorf("no line matching %s in\n%s", re, e)
		}
	}
	if n := strings.Count(e, "\n"); n != len(want) {
		t.Errorf("%d lines on stderr, want %d (one per packet):\n%s", n, len(want), e)
	}

	// QoS -1: the one PUBLISH, no connection.
	code, _, e = runClient(t, port, "", "pub", "-d", "-T", "7", "-m", "x", "-q", "-1")
	if code != 0 || strings.TrimSpace(e) != "-> PUBLISH id=0 predefined_id=7 qos=-1 retain=0 dup=0 len=1" {
		t.Errorf("pub -d -q -1: exit %d\n%s", code, e)
	}
	// Without -d, nothing.
	if code, _, e = runClient(t, port, "", "pub", "-t", "trace/q2", "-m", "x", "-q", "2"); code != 0 || e != "" {
		t.Errorf("pub -q 2 without -d: exit %d %q", code, e)
	}
}

// sub -d traces the same way, what it receives and what it answers.
func TestSubDebugTracesEveryPacket(t *testing.T) {
	port := daemon(t, pubsubConf)
	cmd := exec.Command(os.Args[0], "sub", "-d", "-q", "2", "-W", "2", "-t", "trace/+", "-h", "127.0.0.1", "-p", port)
	cmd.Env = append(os.Environ(), "MUSQRATT_TEST_MAIN=1")
	var errb syncBuf
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errb.String(), "<- SUBACK"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no SUBACK:\n%s", errb.String())
		}
	}
	pub(t, port, "-t", "trace/x", "-m", "hi", "-q", "2")
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 27 {
		t.Errorf("sub -W 2: exit %d, want 27", code)
	}
	e := errb.String()
	want := []string{"-> CONNECT", "<- CONNACK", "-> SUBSCRIBE", "<- SUBACK", "<- REGISTER", "-> REGACK",
		"<- PUBLISH", "-> PUBREC", "<- PUBREL", "-> PUBCOMP", "-> DISCONNECT", "<- DISCONNECT"}
	if got := packetLines(e); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("sub -d -q 2 traced\n%v\nwant\n%v\nstderr:\n%s", got, want, e)
	}
	for _, re := range []string{
		`(?m)^-> SUBSCRIBE id=\d+ topic="trace/\+" qos=2 dup=0$`,
		`(?m)^<- SUBACK id=\d+ qos=2 topic_id=0 rc="accepted"$`,
		`(?m)^<- REGISTER id=\d+ topic_id=[1-9]\d* topic="trace/x"$`,
		`(?m)^<- PUBLISH id=[1-9]\d* topic_id=[1-9]\d* qos=2 retain=0 dup=0 len=2$`,
	} {
		if !regexp.MustCompile(re).MatchString(e) {
			t.Errorf("no line matching %s in\n%s", re, e)
		}
	}
}
