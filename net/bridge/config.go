// Package bridge connects a MusQraTT broker to an MQTT broker or cluster (Mosquitto,
// EMQX, VerneMQ, HiveMQ) as an aggregating gateway: local publications matching `out`
// rules are published upstream, upstream subscriptions from `in` rules are delivered
// to local MQTT-SN subscribers. It runs beside the engine (kernel.Upstream): local
// delivery never waits for it. See docs/scaling.md.
//
// The MQTT client is github.com/eclipse/paho.mqtt.golang (MQTT 3.1.1, TCP, TLS and
// WebSocket, automatic reconnect, in-flight QoS 1/2 kept across reconnects): the Eclipse
// project's long-maintained Go client. Its MQTT 5 sibling, eclipse/paho.golang, would
// add little a bridge needs and leaves reconnection and the session store to the caller.
package bridge

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker/topic"
)

// Config is the bridge's configuration: the `bridge ...` lines of musqratt.conf.
type Config struct {
	Address      string // tcp://host:1883, ssl://host:8883 (also mqtts://, tls://), ws://, wss://
	ClientID     string
	Username     string
	Password     string
	KeepAlive    time.Duration
	CleanSession bool

	TLSCA, TLSCert, TLSKey string
	TLSInsecure            bool

	Out []OutRule
	In  []InRule

	Queue              int // messages held for upstream while it is away
	RetryMin, RetryMax time.Duration
}

// OutRule publishes local topics matching Filter upstream as Prefix+topic, at
// min(QoS, the message's QoS).
type OutRule struct {
	Filter string
	QoS    byte
	Prefix string
}

// InRule subscribes upstream to Filter at QoS and delivers what arrives to local
// subscribers, with Strip removed from the front of the topic when present.
type InRule struct {
	Filter string
	QoS    byte
	Strip  string
}

// Defaults for what the configuration leaves out.
const (
	DefaultQueue     = 10000
	DefaultKeepAlive = 60 * time.Second
	DefaultRetryMin  = time.Second
	DefaultRetryMax  = time.Minute
)

// Enabled reports whether a bridge is configured (an address is set).
func (c *Config) Enabled() bool { return c.Address != "" }

// Keys lists the sub-keys Set accepts, with an example of each.
var Keys = []string{
	"address tcp://mqtt.example.com:1883",
	"client_id edge-1",
	"username edge-1",
	"password secret",
	"keepalive 60s",
	"clean_session false",
	"tls_ca /etc/musqratt/ca.pem",
	"tls_cert /etc/musqratt/edge-1.pem",
	"tls_key /etc/musqratt/edge-1.key",
	"tls_insecure false",
	"out sensors/# 1 edge-1/",
	"in edge-1/commands/# 1 edge-1/",
	"queue 10000",
	"retry_min 1s",
	"retry_max 60s",
}

// Set applies one configuration line, the text after `bridge`: a sub-key and its
// value. The error says what is wrong and how to write it.
func (c *Config) Set(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return fmt.Errorf("bridge: missing sub-key; one of: %s", subKeyNames())
	}
	key, args := f[0], f[1:]
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("bridge %s: want one value, e.g. bridge %s", key, example(key))
		}
		return args[0], nil
	}
	var err error
	var v string
	switch key {
	case "address":
		if v, err = one(); err != nil {
			return err
		}
		u, perr := url.Parse(v)
		if perr != nil || u.Host == "" || u.Port() == "" {
			return fmt.Errorf("bridge address %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883 or ssl://broker:8883", v)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return fmt.Errorf("bridge address %q: scheme %q; use tcp, ssl (or mqtts, tls), ws or wss", v, u.Scheme)
		}
		c.Address = v
	case "client_id":
		if v, err = one(); err != nil {
			return err
		}
		if len(v) > 65535 {
			return fmt.Errorf("bridge client_id: too long")
		}
		c.ClientID = v
	case "username":
		c.Username, err = one()
	case "password":
		// The rest of the line: a password may contain spaces.
		c.Password = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "password"))
		if c.Password == "" {
			return fmt.Errorf("bridge password: missing value")
		}
	case "keepalive", "retry_min", "retry_max":
		if v, err = one(); err != nil {
			return err
		}
		d, derr := time.ParseDuration(v)
		if derr != nil || d <= 0 || d > 24*time.Hour {
			return fmt.Errorf("bridge %s %q: want a duration such as 1s or 60s (at most 24h)", key, v)
		}
		switch key {
		case "keepalive":
			if d < time.Second || d > 65535*time.Second {
				return fmt.Errorf("bridge keepalive %v: MQTT allows 1s to 65535s", d)
			}
			c.KeepAlive = d
		case "retry_min":
			c.RetryMin = d
		case "retry_max":
			c.RetryMax = d
		}
	case "clean_session", "tls_insecure":
		if v, err = one(); err != nil {
			return err
		}
		b, berr := strconv.ParseBool(v)
		if berr != nil {
			return fmt.Errorf("bridge %s %q: want true or false", key, v)
		}
		if key == "clean_session" {
			c.CleanSession = b
		} else {
			c.TLSInsecure = b
		}
	case "tls_ca":
		c.TLSCA, err = one()
	case "tls_cert":
		c.TLSCert, err = one()
	case "tls_key":
		c.TLSKey, err = one()
	case "queue":
		if v, err = one(); err != nil {
			return err
		}
		n, nerr := strconv.Atoi(v)
		if nerr != nil || n < 1 || n > 10_000_000 {
			return fmt.Errorf("bridge queue %q: want a number of messages, 1 to 10000000", v)
		}
		c.Queue = n
	case "out", "in":
		if len(args) < 1 || len(args) > 3 {
			return fmt.Errorf("bridge %s: want FILTER [QOS] [%s], e.g. bridge %s", key, map[string]string{"out": "PREFIX", "in": "STRIP"}[key], example(key))
		}
		filter := args[0]
		if ferr := topic.ValidateFilter(filter); ferr != nil {
			return fmt.Errorf("bridge %s %q: %v", key, filter, ferr)
		}
		qos := byte(1)
		if len(args) >= 2 {
			q, qerr := strconv.Atoi(args[1])
			if qerr != nil || q < 0 || q > 2 {
				return fmt.Errorf("bridge %s %s %q: QoS is 0, 1 or 2", key, filter, args[1])
			}
			qos = byte(q)
		}
		extra := ""
		if len(args) == 3 {
			extra = args[2]
			if strings.ContainsAny(extra, "+#") {
				return fmt.Errorf("bridge %s %s: %q must not contain wildcards", key, filter, extra)
			}
		}
		if key == "out" {
			c.Out = append(c.Out, OutRule{Filter: filter, QoS: qos, Prefix: extra})
		} else {
			c.In = append(c.In, InRule{Filter: filter, QoS: qos, Strip: extra})
		}
	default:
		return fmt.Errorf("bridge: unknown sub-key %q; one of: %s", key, subKeyNames())
	}
	return err
}

// Validate checks the configuration as a whole and fills in defaults.
func (c *Config) Validate() error {
	if !c.Enabled() {
		if len(c.Out) > 0 || len(c.In) > 0 {
			return fmt.Errorf("bridge: out/in rules but no `bridge address`")
		}
		return nil
	}
	if len(c.Out) == 0 && len(c.In) == 0 {
		return fmt.Errorf("bridge: an address but no `bridge out` or `bridge in` rule: nothing would cross it")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("bridge: tls_cert and tls_key go together")
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("bridge: retry_max %v is below retry_min %v", c.RetryMax, c.RetryMin)
	}
	return nil
}

func subKeyNames() string {
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i], _, _ = strings.Cut(k, " ")
	}
	return strings.Join(names, ", ")
}

func example(key string) string {
	for _, k := range Keys {
		if strings.HasPrefix(k, key+" ") {
			return k
		}
	}
	return key
}

// Lines renders c as the `bridge` lines that configure it (for `musqratt serve
// --check`); the password is shown as "********".
func (c *Config) Lines() []string {
	if !c.Enabled() && len(c.Out) == 0 && len(c.In) == 0 {
		return nil
	}
	var l []string
	add := func(f string, a ...any) { l = append(l, fmt.Sprintf(f, a...)) }
	add("address %s", c.Address)
	if c.ClientID != "" {
		add("client_id %s", c.ClientID)
	}
	if c.Username != "" {
		add("username %s", c.Username)
	}
	if c.Password != "" {
		add("password ********")
	}
	if c.KeepAlive != 0 {
		add("keepalive %v", c.KeepAlive)
	}
	add("clean_session %v", c.CleanSession)
	for _, kv := range [][2]string{{"tls_ca", c.TLSCA}, {"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}} {
		if kv[1] != "" {
			add("%s %s", kv[0], kv[1])
		}
	}
	if c.TLSInsecure {
		add("tls_insecure true")
	}
	for _, r := range c.Out {
		add("out %s %d %s", r.Filter, r.QoS, r.Prefix)
	}
	for _, r := range c.In {
		add("in %s %d %s", r.Filter, r.QoS, r.Strip)
	}
	if c.Queue != 0 {
		add("queue %d", c.Queue)
	}
	if c.RetryMin != 0 {
		add("retry_min %v", c.RetryMin)
	}
	if c.RetryMax != 0 {
		add("retry_max %v", c.RetryMax)
	}
	for i := range l {
		l[i] = strings.TrimSpace(l[i])
	}
	return l
}
