package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// clientFlags are the flags musqratt pub and sub share: where the gateway is, who the
// client is, its will, and the protocol timers. Names follow mosquitto_pub/sub and
// mqtt-sn-tools (-h host, -p port, -i id, -t topic, -T pre-defined id, -q QoS, -k
// keep-alive), so scripts carry over.
type clientFlags struct {
	host       string
	port       int
	id         string
	keepAlive  int
	persistent bool
	retry      time.Duration
	retries    int
	debug      bool
	serial     string // --serial DEVICE: the gateway is on this serial line, not UDP
	baud       int
	fs         *flag.FlagSet

	willTopic   string
	willPayload string
	willQoS     int
	willRetain  bool
}

func (f *clientFlags) register(fs *flag.FlagSet, idPrefix string) {
	fs.StringVar(&f.host, "h", "localhost", "the gateway's `HOST` name or address")
	fs.IntVar(&f.port, "p", 1883, "the gateway's UDP `PORT`")
	fs.StringVar(&f.serial, "serial", "", "reach the gateway over the serial line `DEVICE` (its serial_listen), not UDP: MQTT-SN messages back to back, framed by their Length")
	fs.IntVar(&f.baud, "baud", 115200, "the --serial line's `RATE` in baud (a standard rate: 9600, 115200, ...)")
	f.fs = fs
	fs.StringVar(&f.id, "i", fmt.Sprintf("%s-%d", idPrefix, os.Getpid()), "client `ID` (1-23 octets)")
	fs.IntVar(&f.keepAlive, "k", 60, "keep-alive in `SECONDS` (1-65535)")
	fs.BoolVar(&f.persistent, "c", false, "persistent session (CleanSession 0): the gateway keeps subscriptions and queued messages across connections")
	fs.DurationVar(&f.retry, "retry", client.DefaultRetryInterval, "T_RETRY: resend an unanswered request after `DURATION`")
	fs.IntVar(&f.retries, "retries", client.DefaultRetries, "N_RETRY: resend an unanswered request at most `N` times")
	fs.BoolVar(&f.debug, "d", false, "print every packet sent (->) and received (<-) on stderr, one line each")
	fs.StringVar(&f.willTopic, "will-topic", "", "publish a will to `TOPIC` if this client is lost")
	fs.StringVar(&f.willPayload, "will-payload", "", "the will's `MESSAGE`")
	fs.IntVar(&f.willQoS, "will-qos", 0, "the will's `QOS` (0, 1 or 2)")
	fs.BoolVar(&f.willRetain, "will-retain", false, "retain the will")
}

// config checks the flags and returns the gateway address (with --serial, the
// device) and client configuration.
func (f *clientFlags) config() (addr string, cfg client.Config, err error) {
	set := map[string]bool{}
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	}
	if f.serial != "" {
		if set["h"] || set["p"] {
			return "", cfg, fmt.Errorf("-h and -p are for UDP; --serial %s names the gateway's line instead", f.serial)
		}
		if f.baud <= 0 {
			return "", cfg, fmt.Errorf("--baud %d: a baud rate is positive", f.baud)
		}
	} else if set["baud"] {
		return "", cfg, fmt.Errorf("--baud needs --serial DEVICE")
	}
	if f.port < 1 || f.port > 65535 {
		return "", cfg, fmt.Errorf("-p %d: a UDP port is 1-65535", f.port)
	}
	if l := len(f.id); l < 1 || l > packet.MaxClientIDLen {
		return "", cfg, fmt.Errorf("-i %q: a client id is 1-%d octets", f.id, packet.MaxClientIDLen)
	}
	if f.keepAlive < 1 || f.keepAlive > 65535 {
		return "", cfg, fmt.Errorf("-k %d: keep-alive is 1-65535 seconds", f.keepAlive)
	}
	if f.retry <= 0 || f.retries < 1 {
		return "", cfg, fmt.Errorf("--retry %v --retries %d: both must be positive", f.retry, f.retries)
	}
	cfg = client.Config{ClientID: f.id, KeepAlive: time.Duration(f.keepAlive) * time.Second,
		Persistent: f.persistent, RetryInterval: f.retry, Retries: f.retries}
	if f.willTopic != "" {
		if f.willQoS < 0 || f.willQoS > 2 {
			return "", cfg, fmt.Errorf("--will-qos %d: a will is QoS 0, 1 or 2", f.willQoS)
		}
		if err := topic.ValidateName(f.willTopic); err != nil {
			return "", cfg, fmt.Errorf("--will-topic: %v", err)
		}
		if n := len(f.willPayload); n > client.MaxPayload {
			return "", cfg, fmt.Errorf("--will-payload: %d octets, max %d", n, client.MaxPayload)
		}
		cfg.Will = &client.Will{Topic: f.willTopic, Payload: []byte(f.willPayload), QoS: packet.QoS(f.willQoS), Retain: f.willRetain}
	} else if f.willPayload != "" || f.willRetain {
		return "", cfg, fmt.Errorf("--will-payload and --will-retain need --will-topic")
	}
	if f.serial != "" {
		return f.serial, cfg, nil
	}
	return net.JoinHostPort(strings.Trim(f.host, "[]"), strconv.Itoa(f.port)), cfg, nil
}

// conn opens the link to the gateway at addr (config's): a connected UDP socket, or
// with --serial the serial line.
func (f *clientFlags) conn(addr string) (net.Conn, error) {
	if f.serial != "" {
		return dialSerial(f.serial, f.baud)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.DialUDP("udp", nil, ua)
}

// dial connects a client to the gateway at addr (config's) over UDP or --serial.
func (f *clientFlags) dial(ctx context.Context, addr string, cfg client.Config) (*client.Client, error) {
	if f.serial == "" {
		return client.Dial(ctx, addr, cfg)
	}
	conn, err := f.conn(addr)
	if err != nil {
		return nil, err
	}
	return client.DialConn(ctx, conn, addr, cfg)
}

// tracer is the client's Config.OnPacket under -d (nil without): one line on w per
// packet sent ("-> PUBLISH id=7 ...") or received ("<- PUBREC id=7"), as
// mqtt-sn-tools' -d does. Each line is one write, so the sending and the reader
// goroutines' lines never interleave.
func (f *clientFlags) tracer(w io.Writer) func(sent bool, p *packet.Packet) {
	if !f.debug {
		return nil
	}
	var mu sync.Mutex
	var line []byte
	return func(sent bool, p *packet.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if sent {
			line = append(line[:0], "-> "...)
		} else {
			line = append(line[:0], "<- "...)
		}
		line = append(line, client.Describe(p)...)
		line = append(line, '\n')
		w.Write(line)
	}
}

// debugf prints a protocol step when -d is set.
func (f *clientFlags) debugf(w io.Writer, format string, args ...any) {
	if f.debug {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// disconnect ends a session after an error with DISCONNECT, waiting briefly, so that
// the gateway forgets the client cleanly and publishes no will for it.
func (f *clientFlags) disconnect(c *client.Client, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), f.retry)
	defer cancel()
	if err := c.Disconnect(ctx); err != nil {
		f.debugf(stderr, "%v", err)
	}
}

// dialError says what went wrong connecting to addr, without repeating it.
func dialError(addr string, err error) string {
	var nb *client.NoBrokerError
	if errors.As(err, &nb) || strings.Contains(err.Error(), addr) {
		return err.Error()
	}
	return fmt.Sprintf("%s: %v", addr, err)
}

// topicFlags are -t NAME and -T ID: repeatable for sub, one of them once for pub.
type topicFlags struct {
	names stringsFlag
	ids   stringsFlag
}

func (t *topicFlags) register(fs *flag.FlagSet, what string) {
	fs.Var(&t.names, "t", what+" `TOPIC` by name (a 2-octet name is sent as a short topic name)")
	fs.Var(&t.ids, "T", what+" pre-defined topic `ID` (1-65534), as configured on the gateway")
}

// topics returns the topics named, in flag order (names first).
func (t *topicFlags) topics() ([]client.Topic, error) {
	var out []client.Topic
	for _, n := range t.names {
		if n == "" {
			return nil, fmt.Errorf("-t: empty topic name")
		}
		out = append(out, client.Auto(n))
	}
	for _, s := range t.ids {
		id, err := strconv.ParseUint(s, 0, 16)
		if err != nil || id == 0 || id == 0xFFFF {
			return nil, fmt.Errorf("-T %q: a pre-defined topic id is 1-65534", s)
		}
		out = append(out, client.Predefined(uint16(id)))
	}
	return out, nil
}

// parseQoS reads -q: lo..2.
func parseQoS(q, lo int) (packet.QoS, error) {
	if q < lo || q > 2 {
		return 0, fmt.Errorf("-q %d: QoS is %d to 2", q, lo)
	}
	return packet.QoS(q), nil
}

// parseClientFlags parses args into fs, printing usage on -help; done reports that the
// command should exit with code.
func parseClientFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if len(args) == 1 && args[0] == "-h" {
		// "-h" is the host flag (as in mosquitto_pub); alone, it asks for help.
		fs.Usage()
		return 0, true
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}
