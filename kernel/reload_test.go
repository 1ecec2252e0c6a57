package kernel

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// subscribe is an MQTT-SN SUBSCRIBE by topic name at QoS 0: Length, MsgType 0x12,
// Flags (topic name), MsgId, TopicName.
func subscribe(msgID byte, filter string) []byte {
	return append([]byte{byte(5 + len(filter)), 0x12, 0x00, 0x00, msgID}, filter...)
}

// A reload applies the new access rules and log level to a running broker without
// dropping its sessions, and names the keys that need a restart.
func TestReloadAppliesLiveKeysAndKeepsSessions(t *testing.T) {
	srv := udp(t, "127.0.0.1:0")
	parse := func(text string) Config {
		t.Helper()
		cfg, err := ParseConfig("test.conf", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse("broadcast none\nadvertise_interval off\nsys_interval off\n")
	reloads := make(chan Config, 1)
	level := new(slog.LevelVar)
	cfg.Reload, cfg.Level = reloads, level
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)

	c := udp(t, "127.0.0.1:0")
	c.WriteToUDPAddrPort(connect("keep"), local(srv))
	if got := read(t, c); !bytes.Equal(got, []byte{0x03, 0x05, 0x00}) {
		t.Fatalf("CONNACK % x", got)
	}
	// SUBACK: Length 8, 0x13, Flags, TopicId (2), MsgId (2), ReturnCode.
	c.WriteToUDPAddrPort(subscribe(1, "secret/a"), local(srv))
	if got := read(t, c); len(got) != 8 || got[1] != 0x13 || got[7] != 0x00 {
		t.Fatalf("SUBACK before the reload % x, want accepted", got)
	}

	reloads <- parse("broadcast none\nadvertise_interval off\nsys_interval off\nlog_level debug\nmax_clients 5\n" +
		"deny * subscribe secret/#\nallow * subscribe public/#\n")
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), "configuration reloaded"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload line:\n%s", logs.String())
		}
	}
	// The same session, not reconnected: its next SUBSCRIBE meets the new rule.
	c.WriteToUDPAddrPort(subscribe(2, "secret/b"), local(srv))
	if got := read(t, c); len(got) != 8 || got[1] != 0x13 || got[7] != 0x03 {
		t.Fatalf("SUBACK after the reload % x, want 0x03 (not supported: denied)", got)
	}
	c.WriteToUDPAddrPort(subscribe(3, "public/b"), local(srv))
	if got := read(t, c); len(got) != 8 || got[1] != 0x13 || got[7] != 0x00 {
		t.Fatalf("SUBACK for an allowed filter % x, want accepted", got)
	}
	// PINGREQ: the session is still there.
	c.WriteToUDPAddrPort([]byte{0x02, 0x16}, local(srv))
	if got := read(t, c); !bytes.Equal(got, []byte{0x02, 0x17}) {
		t.Fatalf("PINGRESP % x", got)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after the reload, want debug", level.Level())
	}
	out := logs.String()
	for _, want := range []string{
		`msg="configuration reloaded" applied=allow,deny,log_level`,
		`keys=max_clients`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "client disconnect") || strings.Contains(out, "client lost") {
		t.Errorf("a session ended across the reload:\n%s", out)
	}
}

func TestDiffConfig(t *testing.T) {
	a, _ := ParseConfig("a", strings.NewReader("sys_interval 10s\n"))
	b, _ := ParseConfig("b", strings.NewReader("sys_interval 5s\nlisten 127.0.0.1:1\ntopic 3 x/y\nallow_client s1\n"))
	r := diffConfig(a, b)
	if got, want := strings.Join(r.Applied, ","), "allow_client,sys_interval"; got != want {
		t.Errorf("applied %q, want %q", got, want)
	}
	if got, want := strings.Join(r.Restart, ","), "listen,topic"; got != want {
		t.Errorf("restart %q, want %q", got, want)
	}
	if r := diffConfig(a, a); len(r.Applied)+len(r.Restart) != 0 {
		t.Errorf("no change: %+v", r)
	}
}

// musqratt.conf.example is "every key, with its default": parsed, it differs from the
// built-in default only in the pre-defined topics it shows (it used to turn on
// broadcast ADVERTISE).
func TestConfExampleStatesTheDefaults(t *testing.T) {
	example, err := os.ReadFile("../musqratt.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("musqratt.conf.example", bytes.NewReader(example))
	if err != nil {
		t.Fatal(err)
	}
	r := diffConfig(Default(), cfg)
	if got := strings.Join(append(r.Applied, r.Restart...), ","); got != "topic" {
		t.Errorf("musqratt.conf.example differs from the defaults in %s (only topic is an example)", got)
	}
}
