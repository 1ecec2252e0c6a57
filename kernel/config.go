package kernel

import (
	"bytes"
	_ "embed"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/latency"
	"github.com/musqratt/musqratt/net/bridge"
)

// DefaultPort is the UDP port MQTT-SN gateways commonly serve on.
const DefaultPort = 1883

// Config is everything that configures a MusQraTT instance. ParseConfig fills it from a
// file; Default returns the embedded default. The fields below Broker are set by the
// program, not by the file.
type Config struct {
	// Listen lists the UDP addresses to serve on (config key listen).
	Listen []Listener

	// Serial lists the serial lines to serve MQTT-SN on, framed by each message's
	// Length field (config key serial_listen; hosted Linux builds).
	Serial []SerialLine
	// Broadcast lists where ADVERTISE is sent (config key broadcast); empty: nowhere.
	Broadcast []netip.AddrPort
	// ReceiveBuffer and SendBuffer size each socket's kernel buffers in bytes; 0 keeps
	// the system default (config keys receive_buffer, send_buffer).
	ReceiveBuffer, SendBuffer int
	// BusyPoll keeps the engine polling its socket for this long after each datagram
	// instead of sleeping until the next (config key busy_poll; 0: off). See
	// serve.Options.BusyPoll.
	BusyPoll time.Duration

	LogLevel  slog.Level // config key log_level
	LogFormat string     // "text" or "json" (config key log_format)

	// StatusListen is the address of the HTTP status server (config key
	// status_listen): /metrics, the status page, pprof. The hosted daemon starts it
	// (from OnServing); Run itself serves only MQTT-SN.
	StatusListen string

	// SysInterval is how often the $SYS topics are published (config key
	// sys_interval); 0: never.
	SysInterval time.Duration

	// OnServing, if set, is called once the broker serves, with its Metrics: the
	// program's way to the numbers (the console dump, SIGUSR1, the status server).
	OnServing func(*Metrics)

	// Bridge is the upstream MQTT bridge's configuration (config lines `bridge ...`,
	// docs/scaling.md). When it is enabled and Upstream is nil, Run builds the bridge.
	Bridge bridge.Config

	// Upstream, if set, bridges this broker to another (net/bridge); UpstreamQueue
	// bounds the messages from it waiting for the engine (0: DefaultUpstreamQueue).
	Upstream      Upstream
	UpstreamQueue int

	// Board names the hardware in the metrics dump's title ("" hosted).
	Board string

	// Durable state (docs/durability.md), hosted builds only. StateFile "" keeps state
	// in memory (config keys state_file, durability, sync_interval, compact_size).
	// These say what the program's Persistence should do; Run itself uses Persistence.
	StateFile    string
	Durability   string // "strict", "interval" or "none"
	SyncInterval time.Duration
	CompactSize  int

	// Broker is the engine's configuration: gateway id, timers, pre-defined topics,
	// limits. Its hooks (OnEvent, OnPublish, Trace) are the program's to set; Run
	// chains its own event logging in front of OnEvent.
	Broker broker.Config

	// Persistence, if set, stores the engine's durable state (the hosted daemon sets it
	// when StateFile is configured). Nil: state lives in memory only.
	Persistence Persistence

	// Reload, if set, delivers new configurations while Run serves (the daemon sends
	// one on SIGHUP). What can change live (LiveKeys: access control, log level, $SYS
	// interval) is applied between engine calls without touching a session; every
	// other key that changed is logged as keeping its old value until a restart.
	Reload <-chan Config
	// Level, if set, is the logger's level, which a reload sets to the new LogLevel
	// (without it, log_level needs a restart).
	Level *slog.LevelVar

	// Version is logged at startup.
	Version string
	// Clock stamps datagrams for residence-time measurement (nil: the monotonic clock
	// in nanoseconds); Observe, if set, receives each stamp pair (see serve.Options).
	Clock interface {
		Now() uint64
		Freq() uint64
	}
	Observe func(mark, sent uint64)

	// ExtraMetrics, if set, appends the numbers of what lies beneath the driver loop
	// (the image's link endpoint: frames the NIC took, refused, or could not take) to
	// every rendering of the metrics.
	ExtraMetrics func(dst []latency.Metric) []latency.Metric
}

// SerialLine is one serial_listen line: a tty and its baud rate.
type SerialLine struct {
	Device string
	Baud   int
}

func (l SerialLine) String() string { return l.Device + " " + strconv.Itoa(l.Baud) }

// Listener is one listen address.
type Listener struct {
	Addr string // host:port, e.g. "[::]:1883" (dual stack), "0.0.0.0:1883", "[::1]:1883"
	// IPv6Only makes a wildcard IPv6 address serve IPv6 only (listen ... ipv6only).
	IPv6Only bool
}

func (l Listener) String() string {
	if l.IPv6Only {
		return l.Addr + " ipv6only"
	}
	return l.Addr
}

// builtin is the configuration an empty file yields; default.conf spells it out.
func builtin() Config {
	return Config{
		Listen: []Listener{{Addr: "[::]:1883"}},
		// No broadcast by default: a broker started with no setup must not send onto
		// the LAN until its operator says where (docs/config.md, broadcast).
		Broadcast:    nil,
		LogLevel:     slog.LevelInfo,
		LogFormat:    "text",
		Durability:   "strict",
		SyncInterval: time.Second,
		CompactSize:  64 << 20,
		SysInterval:  10 * time.Second,
		Broker:       broker.Defaults(),
	}
}

// Persistence is durable storage for the engine's state. Run calls Restore once before
// serving, then Commit after every engine call and before that call's datagrams are
// sent (so nothing is acknowledged before it is stored), and also at Deadline when
// nothing else happens. A failing Commit withholds the call's datagrams.
type Persistence interface {
	Restore(b *broker.Broker, now time.Time) error
	Commit(b *broker.Broker, now time.Time) error
	Deadline() time.Time // zero: no need to run without traffic
}

//go:embed default.conf
var defaultConf []byte

// DefaultConfigFile is the text of the embedded default configuration.
func DefaultConfigFile() []byte { return append([]byte(nil), defaultConf...) }

// Default returns the embedded default configuration (default.conf): UDP port 1883 on
// every address, dual stack, no ADVERTISE broadcast, the engine's default limits,
// state in memory.
func Default() Config {
	cfg, err := ParseConfig("default.conf", bytes.NewReader(defaultConf))
	if err != nil {
		panic("kernel: embedded default.conf: " + err.Error())
	}
	return cfg
}
