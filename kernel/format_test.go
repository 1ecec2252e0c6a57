package kernel

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

func TestFormatRoundTrips(t *testing.T) {
	for _, text := range []string{
		"",
		"listen 0.0.0.0:1883\nlisten [::]:1884 ipv6only\nbroadcast none\nadvertise_interval off\ntopic 7 a b/c\ntopic 2 x\nlog_level warn\nlog_format json\nstatus_listen 127.0.0.1:8080\nreceive_buffer 1MiB\nrequire_same_address true\nretry_interval 1m30s\n" +
			"max_amplification off\nallow_network 10.0.0.0/8\nallow_client b\nallow_client a\ndeny * subscribe s/#\nallow - publish alarms\nallow x both a b\n" +
			"state_file /tmp/x y\ndurability interval\nsync_interval 200ms\ncompact_size 1MiB\n",
	} {
		c1, err := ParseConfig("a.conf", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		out := Format(c1)
		c2, err := ParseConfig("formatted.conf", bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Errorf("round trip of %q:\n%+v\n%+v\n%s", text, c1, c2, out)
		}
		for _, k := range Keys() {
			if !bytes.Contains(out, []byte(k+" ")) && k != "topic" && k != "serial_listen" && (len(text) > 0 || !accessKey(k)) {
				t.Errorf("Format omits %s", k)
			}
		}
	}
}

func TestFormatFillsZeroEngineFields(t *testing.T) {
	out := string(Format(Config{LogFormat: "text", Broker: broker.Config{MaxClients: 3}}))
	for _, want := range []string{"max_clients 3\n", "gateway_id 1\n", "advertise_interval 15m\n", "retry_interval 10s\n", "broadcast none\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if formatDuration(2*time.Hour) != "2h" || formatDuration(90*time.Second) != "1m30s" || formatDuration(1500*time.Millisecond) != "1.5s" {
		t.Error(formatDuration(2*time.Hour), formatDuration(90*time.Second))
	}
}

func accessKey(k string) bool {
	switch k {
	case "allow_network", "allow_client", "allow", "deny":
		return true
	}
	return false
}
