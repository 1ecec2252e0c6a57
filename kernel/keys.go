package kernel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// key is one configuration key: its syntax, an example line, and how it sets Config.
type key struct {
	name             string
	minArgs, maxArgs int // maxArgs -1: the rest of the line
	repeat           bool
	example          string
	set              func(p *parser, args []string, rest string) error
}

// keys is every configuration key, in the order of docs/config.md.
var keys []key

func init() {
	keys = []key{
		{name: "listen", minArgs: 1, maxArgs: 2, repeat: true, example: "listen [::]:1883", set: setListen},
		{name: "broadcast", minArgs: 1, maxArgs: 1, repeat: true, example: "broadcast 255.255.255.255:1883", set: setBroadcast},
		{name: "receive_buffer", minArgs: 1, maxArgs: 1, example: "receive_buffer 4MiB", set: sizeKey(func(c *Config) *int { return &c.ReceiveBuffer }, 0, 1<<30)},
		{name: "send_buffer", minArgs: 1, maxArgs: 1, example: "send_buffer 1MiB", set: sizeKey(func(c *Config) *int { return &c.SendBuffer }, 0, 1<<30)},
		{name: "serial_listen", minArgs: 2, maxArgs: 2, repeat: true, example: "serial_listen /dev/ttyUSB0 115200", set: setSerialListen},
		{name: "busy_poll", minArgs: 1, maxArgs: 1, example: "busy_poll 2ms", set: setBusyPoll},
		{name: "gateway_id", minArgs: 1, maxArgs: 1, example: "gateway_id 1", set: setGatewayID},
		{name: "advertise_interval", minArgs: 1, maxArgs: 1, example: "advertise_interval 15m", set: setAdvertise},
		{name: "retry_interval", minArgs: 1, maxArgs: 1, example: "retry_interval 10s", set: durationKey(func(c *Config) *time.Duration { return &c.Broker.RetryInterval }, time.Millisecond, time.Hour)},
		{name: "max_retries", minArgs: 1, maxArgs: 1, example: "max_retries 5", set: intKey(func(c *Config) *int { return &c.Broker.MaxRetries }, 1, 100)},
		{name: "topic", minArgs: 2, maxArgs: -1, repeat: true, example: "topic 1 sensors/temperature", set: setTopic},
		{name: "max_clients", minArgs: 1, maxArgs: 1, example: "max_clients 10000", set: intKey(func(c *Config) *int { return &c.Broker.MaxClients }, 1, 1<<24)},
		{name: "max_topics", minArgs: 1, maxArgs: 1, example: "max_topics 65000", set: intKey(func(c *Config) *int { return &c.Broker.MaxTopics }, 1, 65534)},
		{name: "max_topics_per_client", minArgs: 1, maxArgs: 1, example: "max_topics_per_client 1000", set: intKey(func(c *Config) *int { return &c.Broker.MaxTopicsPerClient }, 1, 65534)},
		{name: "max_subscriptions_per_client", minArgs: 1, maxArgs: 1, example: "max_subscriptions_per_client 1000", set: intKey(func(c *Config) *int { return &c.Broker.MaxSubsPerClient }, 1, 1<<20)},
		{name: "max_queued_per_client", minArgs: 1, maxArgs: 1, example: "max_queued_per_client 1000", set: intKey(func(c *Config) *int { return &c.Broker.MaxQueuedPerClient }, 1, 1<<20)},
		{name: "max_sleep_buffer", minArgs: 1, maxArgs: 1, example: "max_sleep_buffer 100", set: intKey(func(c *Config) *int { return &c.Broker.MaxSleepBuffer }, 1, 1<<20)},
		{name: "max_qos2_incoming", minArgs: 1, maxArgs: 1, example: "max_qos2_incoming 100", set: intKey(func(c *Config) *int { return &c.Broker.MaxQoS2Incoming }, 1, 65535)},
		{name: "max_payload", minArgs: 1, maxArgs: 1, example: "max_payload 1024", set: sizeKey(func(c *Config) *int { return &c.Broker.MaxPayload }, 1, packet.MaxLen-7)},
		{name: "max_retained", minArgs: 1, maxArgs: 1, example: "max_retained 10000", set: intKey(func(c *Config) *int { return &c.Broker.MaxRetained }, 1, 1<<24)},
		{name: "max_client_id_length", minArgs: 1, maxArgs: 1, example: "max_client_id_length 23", set: intKey(func(c *Config) *int { return &c.Broker.MaxClientIDLen }, 1, 250)},
		{name: "max_topic_length", minArgs: 1, maxArgs: 1, example: "max_topic_length 1024", set: sizeKey(func(c *Config) *int { return &c.Broker.MaxTopicLength }, 1, topic.MaxLen)},
		{name: "max_topic_levels", minArgs: 1, maxArgs: 1, example: "max_topic_levels 32", set: intKey(func(c *Config) *int { return &c.Broker.MaxTopicLevels }, 1, topic.MaxLen)},
		{name: "max_clients_per_address", minArgs: 1, maxArgs: 1, example: "max_clients_per_address 2000", set: intKey(func(c *Config) *int { return &c.Broker.MaxClientsPerAddress }, 1, 1<<24)},
		{name: "max_connecting", minArgs: 1, maxArgs: 1, example: "max_connecting 100", set: intKey(func(c *Config) *int { return &c.Broker.MaxConnecting }, 1, 1<<24)},
		{name: "connect_timeout", minArgs: 1, maxArgs: 1, example: "connect_timeout 30s", set: durationKey(func(c *Config) *time.Duration { return &c.Broker.ConnectTimeout }, time.Millisecond, time.Hour)},
		{name: "max_keepalive", minArgs: 1, maxArgs: 1, example: "max_keepalive 1h", set: durationKey(func(c *Config) *time.Duration { return &c.Broker.MaxKeepAlive }, time.Second, 65535*time.Second)},
		{name: "inflight_window", minArgs: 1, maxArgs: 1, example: "inflight_window 1", set: intKey(func(c *Config) *int { return &c.Broker.InflightWindow }, 1, 1024)},
		{name: "queue_full_policy", minArgs: 1, maxArgs: 1, example: "queue_full_policy block", set: setQueueFullPolicy},
		{name: "max_held_per_client", minArgs: 1, maxArgs: 1, example: "max_held_per_client 32", set: intKey(func(c *Config) *int { return &c.Broker.MaxHeldPerClient }, 1, 65535)},
		{name: "max_hold_time", minArgs: 1, maxArgs: 1, example: "max_hold_time 30s", set: durationKey(func(c *Config) *time.Duration { return &c.Broker.MaxHoldTime }, time.Millisecond, time.Hour)},
		{name: "require_same_address", minArgs: 1, maxArgs: 1, example: "require_same_address false", set: boolKey(func(c *Config) *bool { return &c.Broker.RequireSameAddress })},
		{name: "max_amplification", minArgs: 1, maxArgs: 1, example: "max_amplification 3", set: setAmplification},
		{name: "allow_network", minArgs: 1, maxArgs: 1, repeat: true, example: "allow_network 10.0.0.0/8", set: setAllowNetwork},
		{name: "allow_client", minArgs: 1, maxArgs: 1, repeat: true, example: "allow_client sensor-1", set: setAllowClient},
		{name: "allow", minArgs: 3, maxArgs: -1, repeat: true, example: "allow * subscribe sensors/#", set: setRule},
		{name: "deny", minArgs: 3, maxArgs: -1, repeat: true, example: "deny * subscribe sensors/secret/#", set: setRule},
		{name: "state_file", minArgs: 1, maxArgs: -1, example: "state_file /var/lib/musqratt/state.journal", set: setStateFile},
		{name: "durability", minArgs: 1, maxArgs: 1, example: "durability strict", set: setDurability},
		{name: "sync_interval", minArgs: 1, maxArgs: 1, example: "sync_interval 1s", set: durationKey(func(c *Config) *time.Duration { return &c.SyncInterval }, time.Millisecond, time.Hour)},
		{name: "compact_size", minArgs: 1, maxArgs: 1, example: "compact_size 64MiB", set: sizeKey(func(c *Config) *int { return &c.CompactSize }, 4096, 1<<30)},
		{name: "log_level", minArgs: 1, maxArgs: 1, example: "log_level info", set: setLogLevel},
		{name: "log_format", minArgs: 1, maxArgs: 1, example: "log_format text", set: setLogFormat},
		{name: "status_listen", minArgs: 1, maxArgs: 1, example: "status_listen 127.0.0.1:8080", set: setStatusListen},
		{name: "sys_interval", minArgs: 1, maxArgs: 1, example: "sys_interval 10s", set: setSysInterval},
		{name: "bridge", minArgs: 2, maxArgs: -1, repeat: true, example: "bridge address tcp://127.0.0.1:1883", set: setBridge},
	}
}

// Keys returns the names of every configuration key.
func Keys() []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

func lookupKey(name string) *key {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

func intKey(field func(*Config) *int, lo, hi int) func(*parser, []string, string) error {
	return func(p *parser, args []string, _ string) error {
		name := p.keyName()
		v, err := strconv.Atoi(args[0])
		if err != nil {
			return p.errorf("%s %q: want a whole number, e.g. %q", name, args[0], lookupKey(name).example)
		}
		if v < lo || v > hi {
			return p.errorf("%s %d: out of range, want %d to %d", name, v, lo, hi)
		}
		*field(&p.cfg) = v
		return nil
	}
}

// keyName is the key of the line being parsed.
func (p *parser) keyName() string { return p.current }

func sizeKey(field func(*Config) *int, lo, hi int) func(*parser, []string, string) error {
	return func(p *parser, args []string, _ string) error {
		name := p.keyName()
		v, err := parseSize(args[0])
		if err != nil {
			return p.errorf("%s %q: %v", name, args[0], err)
		}
		if v < lo || v > hi {
			return p.errorf("%s %s: out of range, want %d to %d octets", name, args[0], lo, hi)
		}
		*field(&p.cfg) = v
		return nil
	}
}

// maxSize is the largest size accepted (it fits an int on 32-bit boards too).
const maxSize = 1 << 30

// parseSize reads a size in octets: a whole number with an optional unit B, KiB (or K,
// KB: 1024), MiB (or M, MB: 1024²).
func parseSize(s string) (int, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("want a size, e.g. 4MiB, 256KiB or 1024")
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, errors.New("number too large")
	}
	mult := 1
	switch strings.ToLower(s[i:]) {
	case "", "b":
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	default:
		return 0, fmt.Errorf("unknown unit %q; use B, KiB or MiB", s[i:])
	}
	if n > maxSize/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

func durationKey(field func(*Config) *time.Duration, lo, hi time.Duration) func(*parser, []string, string) error {
	return func(p *parser, args []string, _ string) error {
		d, err := p.duration(args[0], lo, hi)
		if err != nil {
			return err
		}
		*field(&p.cfg) = d
		return nil
	}
}

func (p *parser) duration(s string, lo, hi time.Duration) (time.Duration, error) {
	name := p.keyName()
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, p.errorf("%s %q: needs a unit, e.g. %ss", name, s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.errorf("%s %q: want a duration such as 500ms, 10s, 15m or 1h30m", name, s)
	}
	if d < lo || d > hi {
		return 0, p.errorf("%s %s: out of range, want %v to %v", name, s, lo, hi)
	}
	return d, nil
}

func boolKey(field func(*Config) *bool) func(*parser, []string, string) error {
	return func(p *parser, args []string, _ string) error {
		switch strings.ToLower(args[0]) {
		case "true", "yes", "on":
			*field(&p.cfg) = true
		case "false", "no", "off":
			*field(&p.cfg) = false
		default:
			return p.errorf("%s %q: want true or false", p.keyName(), args[0])
		}
		return nil
	}
}

// serialBauds are the rates a tty can be set to (termios), as serial_listen accepts.
var serialBauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000,
	3000000, 3500000, 4000000}

func setSerialListen(p *parser, args []string, _ string) error {
	dev := args[0]
	if !strings.HasPrefix(dev, "/") {
		return p.errorf("serial_listen %q: want the device's path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...", dev)
	}
	baud, err := strconv.Atoi(args[1])
	if err != nil || !slices.Contains(serialBauds, baud) {
		return p.errorf("serial_listen %s %q: want a baud rate such as 9600, 38400, 57600, 115200 or 921600", dev, args[1])
	}
	for _, l := range p.cfg.Serial {
		if l.Device == dev {
			return p.errorf("serial_listen %s: the device is already listed", dev)
		}
	}
	p.cfg.Serial = append(p.cfg.Serial, SerialLine{Device: dev, Baud: baud})
	return nil
}

func setListen(p *parser, args []string, _ string) error {
	l := Listener{Addr: args[0]}
	if len(args) == 2 {
		if args[1] != "ipv6only" {
			return p.errorf("listen %s %s: the only option is ipv6only", args[0], args[1])
		}
		l.IPv6Only = true
	}
	host, port, err := net.SplitHostPort(l.Addr)
	if err != nil || port == "" {
		hint := "[::]:1883 (every address, IPv6 and IPv4), 0.0.0.0:1883 (IPv4 only) or [::1]:1883"
		if _, perr := strconv.Atoi(l.Addr); perr == nil {
			hint = "[::]:" + l.Addr
		}
		return p.errorf("listen %q: want host:port, e.g. %s", l.Addr, hint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return p.errorf("listen %q: port %q is not a number from 0 to 65535", l.Addr, port)
	}
	if l.IPv6Only {
		if a, err := netip.ParseAddr(host); host != "" && (err != nil || !a.Is6() || !a.IsUnspecified()) {
			return p.errorf("listen %s ipv6only: ipv6only applies to the wildcard [::] only", l.Addr)
		}
	}
	if !p.listenSet {
		p.cfg.Listen, p.listenSet = nil, true
	}
	p.cfg.Listen = append(p.cfg.Listen, l)
	return nil
}

func setBroadcast(p *parser, args []string, _ string) error {
	if !p.broadcastSet {
		p.cfg.Broadcast, p.broadcastSet = nil, true
	}
	if args[0] == "none" || args[0] == "off" {
		if len(p.cfg.Broadcast) > 0 {
			return p.errorf("broadcast none: other broadcast lines are set; remove them or this one")
		}
		p.seen["broadcast none"] = p.line
		return nil
	}
	if prev, ok := p.seen["broadcast none"]; ok {
		return p.errorf("broadcast %s: line %d says broadcast none", args[0], prev)
	}
	ap, err := netip.ParseAddrPort(args[0])
	if err != nil {
		return p.errorf("broadcast %q: want address:port, e.g. 255.255.255.255:1883, 192.168.1.255:1883 or [ff02::1]:1883, or none", args[0])
	}
	if ap.Port() == 0 {
		return p.errorf("broadcast %q: port 0 is not a destination", args[0])
	}
	p.cfg.Broadcast = append(p.cfg.Broadcast, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	return nil
}

func setGatewayID(p *parser, args []string, _ string) error {
	v, err := strconv.Atoi(args[0])
	if err != nil || v < 1 || v > 255 {
		return p.errorf("gateway_id %q: want a number from 1 to 255", args[0])
	}
	p.cfg.Broker.GatewayID = uint8(v)
	return nil
}

func setAdvertise(p *parser, args []string, _ string) error {
	if args[0] == "off" {
		p.cfg.Broker.AdvertiseInterval = -1
		return nil
	}
	d, err := p.duration(args[0], time.Second, 65535*time.Second)
	if err != nil {
		return err
	}
	p.cfg.Broker.AdvertiseInterval = d
	return nil
}

func setTopic(p *parser, args []string, rest string) error {
	id, err := strconv.Atoi(args[0])
	if err != nil || id < 1 || id > 65534 {
		return p.errorf("topic %q: want a pre-defined topic id from 1 to 65534, then the topic name, e.g. %q", args[0], "topic 1 sensors/temperature")
	}
	name := strings.TrimSpace(rest[len(args[0]):])
	if err := topic.ValidateName(name); err != nil {
		return p.errorf("topic %d %q: %v", id, name, err)
	}
	if prev, ok := p.topicLine[uint16(id)]; ok {
		return p.errorf("topic %d: id already defined on line %d", id, prev)
	}
	for oid, oname := range p.cfg.Broker.Predefined {
		if oname == name {
			return p.errorf("topic %d %q: name already has id %d (line %d)", id, name, oid, p.topicLine[oid])
		}
	}
	if p.cfg.Broker.Predefined == nil {
		p.cfg.Broker.Predefined = make(map[uint16]string)
	}
	p.cfg.Broker.Predefined[uint16(id)] = name
	p.topicLine[uint16(id)] = p.line
	return nil
}

func setLogLevel(p *parser, args []string, _ string) error {
	l, err := ParseLogLevel(args[0])
	if err != nil {
		return p.errorf("log_level %q: %v", args[0], err)
	}
	p.cfg.LogLevel = l
	return nil
}

// ParseLogLevel reads debug, info, warn (or warning) or error.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("want debug, info, warn or error")
}

func setQueueFullPolicy(p *parser, args []string, _ string) error {
	switch args[0] {
	case "block":
		p.cfg.Broker.QueueFullPolicy = broker.PolicyBlock
	case "drop":
		p.cfg.Broker.QueueFullPolicy = broker.PolicyDrop
	default:
		return p.errorf("queue_full_policy %q: want block or drop", args[0])
	}
	return nil
}

func setLogFormat(p *parser, args []string, _ string) error {
	if args[0] != "text" && args[0] != "json" {
		return p.errorf("log_format %q: want text or json", args[0])
	}
	p.cfg.LogFormat = args[0]
	return nil
}

func setStatusListen(p *parser, args []string, _ string) error {
	if args[0] == "off" {
		p.cfg.StatusListen = ""
		return nil
	}
	if _, _, err := net.SplitHostPort(args[0]); err != nil {
		return p.errorf("status_listen %q: want host:port, e.g. 127.0.0.1:8080, or off", args[0])
	}
	p.cfg.StatusListen = args[0]
	return nil
}

// setBridge hands the line's value to the bridge's own parser (net/bridge).
func setBridge(p *parser, _ []string, rest string) error {
	if err := p.cfg.Bridge.Set(rest); err != nil {
		return p.errorf("%v", err)
	}
	return nil
}

// MinBusyPoll and MaxBusyPoll bound busy_poll (and the daemon's --busy-poll); "off" or
// "0" turns it off.
const (
	MinBusyPoll = time.Microsecond
	MaxBusyPoll = time.Second
)

func setBusyPoll(p *parser, args []string, _ string) error {
	if args[0] == "off" || args[0] == "0" {
		p.cfg.BusyPoll = 0
		return nil
	}
	d, err := p.duration(args[0], MinBusyPoll, MaxBusyPoll)
	if err != nil {
		return err
	}
	p.cfg.BusyPoll = d
	return nil
}

func setSysInterval(p *parser, args []string, _ string) error {
	if args[0] == "off" || args[0] == "0" {
		p.cfg.SysInterval = 0
		return nil
	}
	d, err := p.duration(args[0], 100*time.Millisecond, 24*time.Hour)
	if err != nil {
		return err
	}
	p.cfg.SysInterval = d
	return nil
}

// setStateFile takes the rest of the line, so a path may contain spaces.
func setStateFile(p *parser, args []string, rest string) error {
	if rest == "off" {
		p.cfg.StateFile = ""
		return nil
	}
	p.cfg.StateFile = rest
	return nil
}

func setDurability(p *parser, args []string, _ string) error {
	switch args[0] {
	case "strict", "interval", "none":
		p.cfg.Durability = args[0]
		return nil
	}
	return p.errorf("durability %q: want strict (sync before acknowledging), interval (sync every sync_interval) or none", args[0])
}
