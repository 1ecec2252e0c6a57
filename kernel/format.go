package kernel

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// Format writes cfg in the configuration file format, one line per key, so that
// ParseConfig reads back the same configuration (the program-set fields aside).
func Format(cfg Config) []byte {
	var b bytes.Buffer
	line := func(key string, format string, args ...any) {
		fmt.Fprintf(&b, "%s "+format+"\n", append([]any{key}, args...)...)
	}
	for _, l := range cfg.Listen {
		line("listen", "%s", l)
	}
	for _, l := range cfg.Serial {
		line("serial_listen", "%s", l)
	}
	if len(cfg.Broadcast) == 0 {
		line("broadcast", "none")
	}
	for _, a := range cfg.Broadcast {
		line("broadcast", "%s", a)
	}
	line("receive_buffer", "%d", cfg.ReceiveBuffer)
	line("send_buffer", "%d", cfg.SendBuffer)
	if cfg.BusyPoll == 0 {
		line("busy_poll", "off")
	} else {
		line("busy_poll", "%s", formatDuration(cfg.BusyPoll))
	}
	c := fillDefaults(cfg.Broker)
	line("gateway_id", "%d", c.GatewayID)
	if c.AdvertiseInterval < 0 {
		line("advertise_interval", "off")
	} else {
		line("advertise_interval", "%s", formatDuration(c.AdvertiseInterval))
	}
	line("retry_interval", "%s", formatDuration(c.RetryInterval))
	line("max_retries", "%d", c.MaxRetries)
	ids := make([]int, 0, len(c.Predefined))
	for id := range c.Predefined {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		line("topic", "%d %s", id, c.Predefined[uint16(id)])
	}
	line("max_clients", "%d", c.MaxClients)
	line("max_topics", "%d", c.MaxTopics)
	line("max_topics_per_client", "%d", c.MaxTopicsPerClient)
	line("max_subscriptions_per_client", "%d", c.MaxSubsPerClient)
	line("max_queued_per_client", "%d", c.MaxQueuedPerClient)
	line("max_sleep_buffer", "%d", c.MaxSleepBuffer)
	line("max_qos2_incoming", "%d", c.MaxQoS2Incoming)
	line("max_payload", "%d", c.MaxPayload)
	line("max_retained", "%d", c.MaxRetained)
	line("max_client_id_length", "%d", c.MaxClientIDLen)
	line("max_topic_length", "%d", c.MaxTopicLength)
	line("max_topic_levels", "%d", c.MaxTopicLevels)
	line("max_clients_per_address", "%d", c.MaxClientsPerAddress)
	line("max_connecting", "%d", c.MaxConnecting)
	line("connect_timeout", "%s", formatDuration(c.ConnectTimeout))
	line("max_keepalive", "%s", formatDuration(c.MaxKeepAlive))
	line("inflight_window", "%d", c.InflightWindow)
	line("queue_full_policy", "%s", c.QueueFullPolicy)
	line("max_held_per_client", "%d", c.MaxHeldPerClient)
	line("max_hold_time", "%s", formatDuration(c.MaxHoldTime))
	line("require_same_address", "%t", c.RequireSameAddress)
	if c.MaxAmplification < 0 {
		line("max_amplification", "off")
	} else {
		line("max_amplification", "%d", c.MaxAmplification)
	}
	if a := c.Access; a != nil {
		for _, n := range a.Networks {
			line("allow_network", "%s", n)
		}
		clients := make([]string, 0, len(a.ClientIDs))
		for id, ok := range a.ClientIDs {
			if ok {
				clients = append(clients, id)
			}
		}
		sort.Strings(clients)
		for _, id := range clients {
			line("allow_client", "%s", id)
		}
		for _, r := range a.Rules {
			key := "deny"
			if r.Allow {
				key = "allow"
			}
			action := map[broker.Action]string{broker.ActionPublish: "publish", broker.ActionSubscribe: "subscribe", broker.ActionBoth: "both"}[r.Action]
			line(key, "%s %s %s", r.Client, action, r.Filter)
		}
	}
	if cfg.StateFile == "" {
		line("state_file", "off")
	} else {
		line("state_file", "%s", cfg.StateFile)
	}
	def := builtin()
	if cfg.Durability == "" {
		cfg.Durability = def.Durability
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = def.SyncInterval
	}
	if cfg.CompactSize == 0 {
		cfg.CompactSize = def.CompactSize
	}
	line("durability", "%s", cfg.Durability)
	line("sync_interval", "%s", formatDuration(cfg.SyncInterval))
	line("compact_size", "%d", cfg.CompactSize)
	line("log_level", "%s", strings.ToLower(cfg.LogLevel.String()))
	line("log_format", "%s", cfg.LogFormat)
	if cfg.StatusListen == "" {
		line("status_listen", "off")
	} else {
		line("status_listen", "%s", cfg.StatusListen)
	}
	if cfg.SysInterval == 0 {
		line("sys_interval", "off")
	} else {
		line("sys_interval", "%s", formatDuration(cfg.SysInterval))
	}
	if lines := cfg.Bridge.Lines(); len(lines) == 0 {
		b.WriteString("# no upstream bridge (docs/scaling.md), e.g. bridge address tcp://mqtt.example.com:1883\n")
	} else {
		for _, l := range lines {
			line("bridge", "%s", l)
		}
	}
	return b.Bytes()
}

// formatDuration drops time.Duration's zero tails: 15m rather than 15m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// fillDefaults gives zero engine fields their defaults (a zero field means the default
// to broker.New too), so Format states real values.
func fillDefaults(c broker.Config) broker.Config {
	d := broker.Defaults()
	if c.GatewayID == 0 {
		c.GatewayID = d.GatewayID
	}
	if c.AdvertiseInterval == 0 {
		c.AdvertiseInterval = d.AdvertiseInterval
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = d.RetryInterval
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.MaxRetries, d.MaxRetries}, {&c.MaxClients, d.MaxClients}, {&c.MaxTopics, d.MaxTopics},
		{&c.MaxTopicsPerClient, d.MaxTopicsPerClient}, {&c.MaxSubsPerClient, d.MaxSubsPerClient},
		{&c.MaxQueuedPerClient, d.MaxQueuedPerClient}, {&c.MaxSleepBuffer, d.MaxSleepBuffer},
		{&c.MaxQoS2Incoming, d.MaxQoS2Incoming}, {&c.MaxPayload, d.MaxPayload},
		{&c.MaxRetained, d.MaxRetained}, {&c.MaxClientIDLen, d.MaxClientIDLen},
		{&c.InflightWindow, d.InflightWindow}, {&c.MaxAmplification, d.MaxAmplification},
		{&c.MaxHeldPerClient, d.MaxHeldPerClient}, {&c.MaxTopicLength, d.MaxTopicLength},
		{&c.MaxTopicLevels, d.MaxTopicLevels}, {&c.MaxClientsPerAddress, d.MaxClientsPerAddress},
		{&c.MaxConnecting, d.MaxConnecting},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxHoldTime == 0 {
		c.MaxHoldTime = d.MaxHoldTime
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.MaxKeepAlive == 0 {
		c.MaxKeepAlive = d.MaxKeepAlive
	}
	return c
}
