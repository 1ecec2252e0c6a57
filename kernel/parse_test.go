package kernel

import (
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

func parse(t *testing.T, text string) (Config, error) {
	t.Helper()
	return ParseConfig("musqratt.conf", strings.NewReader(text))
}

func TestParseGoodLines(t *testing.T) {
	for _, tc := range []struct {
		key  string // the key under test (every key must appear)
		text string
		ok   func(c Config) bool
	}{
		{"listen", "listen [::]:1884", func(c Config) bool {
			return reflect.DeepEqual(c.Listen, []Listener{{Addr: "[::]:1884"}})
		}},
		{"listen", "listen 0.0.0.0:1883\nlisten [::1]:1883\nlisten [::]:1885 ipv6only", func(c Config) bool {
			return reflect.DeepEqual(c.Listen, []Listener{{Addr: "0.0.0.0:1883"}, {Addr: "[::1]:1883"}, {Addr: "[::]:1885", IPv6Only: true}})
		}},
		{"listen", "listen :1883 ipv6only", func(c Config) bool { return c.Listen[0].IPv6Only }},
		{"listen", "listen localhost:0", func(c Config) bool { return c.Listen[0].Addr == "localhost:0" }},
		{"serial_listen", "serial_listen /dev/ttyUSB0 115200\nserial_listen /dev/ttyS1 9600", func(c Config) bool {
			return len(c.Serial) == 2 && c.Serial[0] == SerialLine{"/dev/ttyUSB0", 115200} && c.Serial[1].Baud == 9600
		}},
		{"broadcast", "broadcast 192.168.1.255:1883\nbroadcast [ff02::1%eth0]:10000", func(c Config) bool {
			return reflect.DeepEqual(c.Broadcast, []netip.AddrPort{
				netip.MustParseAddrPort("192.168.1.255:1883"), netip.MustParseAddrPort("[ff02::1%eth0]:10000")})
		}},
		{"broadcast", "broadcast none", func(c Config) bool { return len(c.Broadcast) == 0 }},
		{"broadcast", "broadcast off", func(c Config) bool { return len(c.Broadcast) == 0 }},
		{"receive_buffer", "receive_buffer 4MiB", func(c Config) bool { return c.ReceiveBuffer == 4<<20 }},
		{"receive_buffer", "receive_buffer 256k", func(c Config) bool { return c.ReceiveBuffer == 256<<10 }},
		{"receive_buffer", "receive_buffer 0", func(c Config) bool { return c.ReceiveBuffer == 0 }},
		{"send_buffer", "send_buffer 65536", func(c Config) bool { return c.SendBuffer == 65536 }},
		{"send_buffer", "send_buffer 2M", func(c Config) bool { return c.SendBuffer == 2<<20 }},
		{"gateway_id", "gateway_id 255", func(c Config) bool { return c.Broker.GatewayID == 255 }},
		{"advertise_interval", "advertise_interval 1h", func(c Config) bool { return c.Broker.AdvertiseInterval == time.Hour }},
		{"advertise_interval", "advertise_interval off", func(c Config) bool { return c.Broker.AdvertiseInterval < 0 }},
		{"retry_interval", "retry_interval 1.5s", func(c Config) bool { return c.Broker.RetryInterval == 1500*time.Millisecond }},
		{"max_retries", "max_retries 3", func(c Config) bool { return c.Broker.MaxRetries == 3 }},
		{"topic", "topic 1 sensors/temperature\ntopic 65534 a b/c d", func(c Config) bool {
			return reflect.DeepEqual(c.Broker.Predefined, map[uint16]string{1: "sensors/temperature", 65534: "a b/c d"})
		}},
		{"max_clients", "max_clients 5", func(c Config) bool { return c.Broker.MaxClients == 5 }},
		{"max_topics", "max_topics 65534", func(c Config) bool { return c.Broker.MaxTopics == 65534 }},
		{"max_topics_per_client", "max_topics_per_client 7", func(c Config) bool { return c.Broker.MaxTopicsPerClient == 7 }},
		{"max_subscriptions_per_client", "max_subscriptions_per_client 8", func(c Config) bool { return c.Broker.MaxSubsPerClient == 8 }},
		{"max_queued_per_client", "max_queued_per_client 9", func(c Config) bool { return c.Broker.MaxQueuedPerClient == 9 }},
		{"max_sleep_buffer", "max_sleep_buffer 10", func(c Config) bool { return c.Broker.MaxSleepBuffer == 10 }},
		{"max_qos2_incoming", "max_qos2_incoming 11", func(c Config) bool { return c.Broker.MaxQoS2Incoming == 11 }},
		{"max_payload", "max_payload 1KiB", func(c Config) bool { return c.Broker.MaxPayload == 1024 }},
		{"max_payload", "max_payload 65528", func(c Config) bool { return c.Broker.MaxPayload == 65528 }},
		{"max_retained", "max_retained 12", func(c Config) bool { return c.Broker.MaxRetained == 12 }},
		{"max_client_id_length", "max_client_id_length 64", func(c Config) bool { return c.Broker.MaxClientIDLen == 64 }},
		{"max_topic_length", "max_topic_length 256", func(c Config) bool { return c.Broker.MaxTopicLength == 256 }},
		{"max_topic_length", "max_topic_length 63KiB", func(c Config) bool { return c.Broker.MaxTopicLength == 63<<10 }},
		{"max_topic_levels", "max_topic_levels 8", func(c Config) bool { return c.Broker.MaxTopicLevels == 8 }},
		{"max_clients_per_address", "max_clients_per_address 50", func(c Config) bool { return c.Broker.MaxClientsPerAddress == 50 }},
		{"max_connecting", "max_connecting 7", func(c Config) bool { return c.Broker.MaxConnecting == 7 }},
		{"connect_timeout", "connect_timeout 5s", func(c Config) bool { return c.Broker.ConnectTimeout == 5*time.Second }},
		{"max_keepalive", "max_keepalive 18h12m15s", func(c Config) bool { return c.Broker.MaxKeepAlive == 65535*time.Second }},
		{"inflight_window", "inflight_window 16", func(c Config) bool { return c.Broker.InflightWindow == 16 }},
		{"queue_full_policy", "queue_full_policy drop", func(c Config) bool { return c.Broker.QueueFullPolicy == broker.PolicyDrop }},
		{"queue_full_policy", "queue_full_policy block", func(c Config) bool { return c.Broker.QueueFullPolicy == broker.PolicyBlock }},
		{"max_held_per_client", "max_held_per_client 4", func(c Config) bool { return c.Broker.MaxHeldPerClient == 4 }},
		{"max_hold_time", "max_hold_time 2m", func(c Config) bool { return c.Broker.MaxHoldTime == 2*time.Minute }},
		{"require_same_address", "require_same_address yes", func(c Config) bool { return c.Broker.RequireSameAddress }},
		{"require_same_address", "require_same_address false", func(c Config) bool { return !c.Broker.RequireSameAddress }},
		{"max_amplification", "max_amplification 5", func(c Config) bool { return c.Broker.MaxAmplification == 5 }},
		{"max_amplification", "max_amplification off", func(c Config) bool { return c.Broker.MaxAmplification < 0 }},
		{"allow_network", "allow_network 10.0.0.0/8\nallow_network fd00::/8\nallow_network 192.168.1.7\nallow_network 10.1.2.3/16", func(c Config) bool {
			return reflect.DeepEqual(c.Broker.Access.Networks, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("10.1.0.0/16")})
		}},
		{"allow_client", "allow_client sensor-1\nallow_client sensor-2", func(c Config) bool {
			return reflect.DeepEqual(c.Broker.Access.ClientIDs, map[string]bool{"sensor-1": true, "sensor-2": true})
		}},
		{"allow", "allow * subscribe sensors/#\nallow - publish alarms\nallow sensor-1 both a b/+", func(c Config) bool {
			return reflect.DeepEqual(c.Broker.Access.Rules, []broker.Rule{
				{Allow: true, Client: "*", Action: broker.ActionSubscribe, Filter: "sensors/#"},
				{Allow: true, Client: "-", Action: broker.ActionPublish, Filter: "alarms"},
				{Allow: true, Client: "sensor-1", Action: broker.ActionBoth, Filter: "a b/+"}})
		}},
		{"deny", "deny  *   subscribe   sensors/secret/#", func(c Config) bool {
			return reflect.DeepEqual(c.Broker.Access.Rules, []broker.Rule{{Client: "*", Action: broker.ActionSubscribe, Filter: "sensors/secret/#"}})
		}},
		{"state_file", "state_file /var/lib/musqratt/state.journal", func(c Config) bool { return c.StateFile == "/var/lib/musqratt/state.journal" }},
		{"state_file", "state_file off", func(c Config) bool { return c.StateFile == "" }},
		{"durability", "durability interval", func(c Config) bool { return c.Durability == "interval" }},
		{"durability", "durability none", func(c Config) bool { return c.Durability == "none" }},
		{"sync_interval", "sync_interval 250ms", func(c Config) bool { return c.SyncInterval == 250*time.Millisecond }},
		{"compact_size", "compact_size 1MiB", func(c Config) bool { return c.CompactSize == 1<<20 }},
		{"log_level", "log_level debug", func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{"log_level", "log_level WARNING", func(c Config) bool { return c.LogLevel == slog.LevelWarn }},
		{"log_level", "log_level error", func(c Config) bool { return c.LogLevel == slog.LevelError }},
		{"log_format", "log_format json", func(c Config) bool { return c.LogFormat == "json" }},
		{"status_listen", "status_listen 127.0.0.1:8080", func(c Config) bool { return c.StatusListen == "127.0.0.1:8080" }},
		{"status_listen", "status_listen off", func(c Config) bool { return c.StatusListen == "" }},
		{"busy_poll", "busy_poll 2ms", func(c Config) bool { return c.BusyPoll == 2*time.Millisecond }},
		{"busy_poll", "busy_poll off", func(c Config) bool { return c.BusyPoll == 0 }},
		{"sys_interval", "sys_interval 1m", func(c Config) bool { return c.SysInterval == time.Minute }},
		{"sys_interval", "sys_interval off", func(c Config) bool { return c.SysInterval == 0 }},
		{"bridge", "bridge address tcp://127.0.0.1:1883\nbridge out sensors/# 1 edge-1/", func(c Config) bool {
			return c.Bridge.Address == "tcp://127.0.0.1:1883" && len(c.Bridge.Out) == 1 && c.Bridge.Out[0].Prefix == "edge-1/" && c.Bridge.Queue == 10000
		}},
		// Syntax: comments, blank lines, indentation, tabs, CRLF.
		{"", "# only a comment\n\n   \n", func(c Config) bool { return reflect.DeepEqual(c, builtin()) }},
		{"", "\tmax_clients\t42   # trailing comment\r\n", func(c Config) bool { return c.Broker.MaxClients == 42 }},
	} {
		c, err := parse(t, tc.text)
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		if !tc.ok(c) {
			t.Errorf("%q: unexpected result %+v", tc.text, c)
		}
	}
}

func TestEveryKeyHasAGoodLineTest(t *testing.T) {
	src, err := os.ReadFile("parse_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(src), `{"`+k+`", "`+k+` `) {
			t.Errorf("key %s has no good-line test in TestParseGoodLines", k)
		}
	}
}

func TestParseBadLines(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"max_client 10", `musqratt.conf:1: unknown key "max_client"; did you mean "max_clients"?`},
		{"\nqueue_full_policy drops", `musqratt.conf:2: queue_full_policy "drops": want block or drop`},
		{"max_hold_time 30", `musqratt.conf:1: max_hold_time "30": needs a unit, e.g. 30s`},
		{"max_held_per_client 0", `musqratt.conf:1: max_held_per_client`},
		{"\n\n# c\nretry_interval 10", `musqratt.conf:4: retry_interval "10": needs a unit, e.g. 10s`},
		{"retry_interval 2.5", `musqratt.conf:1: retry_interval "2.5": needs a unit, e.g. 2.5s`},
		{"retry_interval soon", `musqratt.conf:1: retry_interval "soon": want a duration such as 500ms, 10s, 15m or 1h30m`},
		{"retry_interval 0s", `musqratt.conf:1: retry_interval 0s: out of range, want 1ms to 1h0m0s`},
		{"retry_interval -1s", `out of range`},
		{"advertise_interval 19h", `musqratt.conf:1: advertise_interval 19h: out of range, want 1s to 18h12m15s`},
		{"advertise_interval 900", `needs a unit, e.g. 900s`},
		{"busy_poll 2s", `musqratt.conf:1: busy_poll 2s: out of range, want 1µs to 1s`},
		{"busy_poll 5", `busy_poll "5": needs a unit, e.g. 5s`},
		{"port 1883", `musqratt.conf:1: unknown key "port"; use "listen [::]:PORT"`},
		{"max_connections 5", `unknown key "max_connections"; did you mean "max_clients"?`},
		{"gatway_id 3", `did you mean "gateway_id"?`},
		{"LISTEN [::]:1883", `did you mean "listen"?`},
		{"frobnicate 1", `unknown key "frobnicate"; the keys are listen, broadcast,`},
		{"max_clients", `musqratt.conf:1: max_clients needs a value, e.g. "max_clients 10000"`},
		{"max_clients 10 20", `musqratt.conf:1: max_clients takes one value, got 2 (10 20); e.g. "max_clients 10000"`},
		{"max_clients ten", `musqratt.conf:1: max_clients "ten": want a whole number, e.g. "max_clients 10000"`},
		{"max_clients 0", `musqratt.conf:1: max_clients 0: out of range, want 1 to 16777216`},
		{"max_clients -5", `max_clients -5: out of range`},
		{"max_clients 1\nmax_clients 2", `musqratt.conf:2: max_clients is already set on line 1; remove one of them`},
		{"max_topics 65535", `max_topics 65535: out of range, want 1 to 65534`},
		{"max_topics_per_client x", `want a whole number`},
		{"max_subscriptions_per_client 0", `out of range`},
		{"max_queued_per_client 0", `out of range`},
		{"max_sleep_buffer 0", `out of range`},
		{"max_qos2_incoming 0", `out of range`},
		{"max_payload 65529", `max_payload 65529: out of range, want 1 to 65528 octets`},
		{"max_payload 1GiB", `max_payload "1GiB": unknown unit "GiB"; use B, KiB or MiB`},
		{"max_payload big", `max_payload "big": want a size, e.g. 4MiB, 256KiB or 1024`},
		{"max_retained 0", `out of range`},
		{"max_client_id_length 0", `out of range`},
		{"inflight_window 2000", `inflight_window 2000: out of range, want 1 to 1024`},
		{"max_topic_length 0", `musqratt.conf:1: max_topic_length 0: out of range, want 1 to 65535 octets`},
		{"max_topic_levels 70000", `max_topic_levels 70000: out of range, want 1 to 65535`},
		{"max_clients_per_address none", `max_clients_per_address "none": want a whole number`},
		{"max_connecting 0", `max_connecting 0: out of range`},
		{"connect_timeout 30", `connect_timeout "30": needs a unit, e.g. 30s`},
		{"max_keepalive 19h", `max_keepalive 19h: out of range, want 1s to 18h12m15s`},
		{"require_same_address maybe", `require_same_address "maybe": want true or false`},
		{"receive_buffer 2GiB", `unknown unit`},
		{"receive_buffer 2048MiB", `receive_buffer "2048MiB": size too large`},
		{"send_buffer -1", `want a size`},
		{"gateway_id 0", `musqratt.conf:1: gateway_id "0": want a number from 1 to 255`},
		{"gateway_id 256", `gateway_id "256": want a number from 1 to 255`},
		{"max_retries 0", `out of range`},
		{"topic 1", `musqratt.conf:1: topic needs a value, e.g. "topic 1 sensors/temperature"`},
		{"topic 0 a/b", `topic "0": want a pre-defined topic id from 1 to 65534`},
		{"topic 65535 a/b", `topic "65535": want a pre-defined topic id`},
		{"topic x a/b", `topic "x": want a pre-defined topic id`},
		{"topic 1 a/+", `musqratt.conf:1: topic 1 "a/+":`},
		{"topic 1 a/b\ntopic 1 c/d", `musqratt.conf:2: topic 1: id already defined on line 1`},
		{"topic 1 a/b\ntopic 2 a/b", `musqratt.conf:2: topic 2 "a/b": name already has id 1 (line 1)`},
		{"listen 1883", `musqratt.conf:1: listen "1883": want host:port, e.g. [::]:1883`},
		{"serial_listen ttyUSB0 115200", `musqratt.conf:1: serial_listen "ttyUSB0": want the device's path`},
		{"serial_listen /dev/ttyUSB0 115201", `serial_listen /dev/ttyUSB0 "115201": want a baud rate such as`},
		{"serial_listen /dev/ttyUSB0", `serial_listen needs a value, e.g. "serial_listen /dev/ttyUSB0 115200"`},
		{"serial_listen /dev/ttyS0 9600\nserial_listen /dev/ttyS0 19200", `musqratt.conf:2: serial_listen /dev/ttyS0: the device is already listed`},
		{"listen [::]", `listen "[::]": want host:port`},
		{"listen 127.0.0.1:99999", `port "99999" is not a number from 0 to 65535`},
		{"listen [::]:1883 v6", `the only option is ipv6only`},
		{"listen 0.0.0.0:1883 ipv6only", `ipv6only applies to the wildcard [::] only`},
		{"listen a b c", `listen takes 2 values, got 3`},
		{"broadcast 255.255.255.255", `broadcast "255.255.255.255": want address:port`},
		{"broadcast 10.0.0.255:0", `port 0 is not a destination`},
		{"broadcast none\nbroadcast 10.0.0.255:1883", `musqratt.conf:2: broadcast 10.0.0.255:1883: line 1 says broadcast none`},
		{"broadcast 10.0.0.255:1883\nbroadcast none", `broadcast none: other broadcast lines are set`},
		{"log_level loud", `log_level "loud": want debug, info, warn or error`},
		{"log_format xml", `log_format "xml": want text or json`},
		{"status_listen 8080", `status_listen "8080": want host:port`},
		{"sys_interval 10", `sys_interval "10": needs a unit`},
		{"bridge address localhost", `bridge address "localhost": want scheme://host:port`},
		{"bridge out a/#/b", `bridge out "a/#/b"`},
		{"bridge frobnicate 1", `bridge: unknown sub-key "frobnicate"`},
		{"bridge address tcp://h:1883", `bridge: an address but no`},
		{"sys_interval 1ms", `sys_interval 1ms: out of range`},
		{"persistence true", `unknown key "persistence"; did you mean "state_file"?`},
		{"max_amplification 0", `max_amplification "0": want a factor from 1 to 1000, or off`},
		{"allow_network 10.0.0.0/33", `allow_network "10.0.0.0/33": want an address range`},
		{"allow_network sensors", `want an address range, e.g. 10.0.0.0/8`},
		{"allow_client", `allow_client needs a value`},
		{"allow_client a b", `allow_client takes one value`},
		{"allow * read sensors/#", `allow * "read": want publish, subscribe or both, then a topic filter, e.g. "allow * subscribe sensors/#"`},
		{"deny * subscribe", `deny needs a value, e.g. "deny * subscribe sensors/secret/#"`},
		{"deny * subscribe a/#/b", `musqratt.conf:1: deny * subscribe "a/#/b":`},
		{"durability always", `durability "always": want strict`},
		{"sync_interval 1", `sync_interval "1": needs a unit, e.g. 1s`},
		{"compact_size 1KiB", `compact_size 1KiB: out of range, want 4096 to 1073741824 octets`},
		{"state_file", `state_file needs a value`},
	} {
		_, err := parse(t, tc.text)
		if err == nil {
			t.Errorf("%q: no error, want %q", tc.text, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got  %s\n want %s", tc.text, err, tc.want)
		}
		if _, ok := err.(*ConfigError); !ok {
			t.Errorf("%q: error is %T, want *ConfigError", tc.text, err)
		}
	}
}

func TestHashInsideValueIsNotAComment(t *testing.T) {
	// "a/b#c" keeps its '#' (and is then rejected as a topic name with a wildcard).
	_, err := parse(t, "topic 3 a/b#c")
	if err == nil || !strings.Contains(err.Error(), `topic 3 "a/b#c"`) {
		t.Errorf("got %v", err)
	}
	c, err := parse(t, "topic 3 a/b #c")
	if err != nil || c.Broker.Predefined[3] != "a/b" {
		t.Errorf("got %v %v", c.Broker.Predefined, err)
	}
}

func TestEmptyFileIsTheDefault(t *testing.T) {
	c, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("empty file:\n%+v\ndefault.conf:\n%+v", c, Default())
	}
	d := Default()
	if len(d.Listen) != 1 || d.Listen[0].Addr != "[::]:1883" || d.Listen[0].IPv6Only {
		t.Errorf("default listen %v, want dual-stack [::]:1883", d.Listen)
	}
	if d.LogFormat != "text" || d.LogLevel != slog.LevelInfo || d.StatusListen != "" {
		t.Errorf("default logging %+v", d)
	}
}

// default.conf states every key that has a single value, so it documents them all.
func TestDefaultConfStatesEveryKey(t *testing.T) {
	text := string(DefaultConfigFile())
	for _, k := range Keys() {
		if !strings.Contains(text, "\n"+k+" ") && !strings.Contains(text, "#   "+k+" ") {
			t.Errorf("default.conf does not mention %s", k)
		}
	}
}

func TestExampleAndDocsCoverEveryKey(t *testing.T) {
	example, err := os.ReadFile("../musqratt.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig("musqratt.conf.example", strings.NewReader(string(example))); err != nil {
		t.Errorf("the example does not parse: %v", err)
	}
	docs, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(example), k+" ") {
			t.Errorf("musqratt.conf.example does not mention %s", k)
		}
		if !strings.Contains(string(docs), "`"+k+"`") {
			t.Errorf("docs/config.md does not document %s", k)
		}
	}
}

func TestConfigErrorWithoutLine(t *testing.T) {
	e := &ConfigError{File: "x.conf", Msg: "bad"}
	if e.Error() != "x.conf: bad" {
		t.Error(e.Error())
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"max_client", "max_clients", 1}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("%q %q: %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(string(DefaultConfigFile()))
	f.Add("topic 1 a/b\nlisten [::]:1 ipv6only\nbroadcast none\nmax_payload 1KiB")
	f.Add("retry_interval 10\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig("fuzz.conf", strings.NewReader(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.conf:") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if err := c.Broker.Validate(); err != nil {
			t.Fatalf("accepted a config the engine rejects: %v", err)
		}
	})
}

// The default column of docs/config.md is the real default: "key DEFAULT" parses to
// the default configuration.
func TestDocsDefaultsAreTheDefaults(t *testing.T) {
	docs, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| `([^`]+)`")
	seen := 0
	for _, m := range row.FindAllStringSubmatch(string(docs), -1) {
		key, def := m[1], m[2]
		if key == "broadcast" { // two defaults in one cell
			continue
		}
		c, err := parse(t, key+" "+def)
		if err != nil {
			t.Errorf("docs default of %s: %v", key, err)
			continue
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("docs say %s defaults to %s; the default differs", key, def)
		}
		seen++
	}
	if seen < 20 {
		t.Errorf("only %d defaults found in docs/config.md tables", seen)
	}
}
