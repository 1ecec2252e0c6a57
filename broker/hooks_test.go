package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestInject(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "$SYS/#", 1)
	out, err := n.Broker.Inject(n.Now(), "$SYS/broker/uptime", []byte("42"), 1, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 { // REGISTER: the wildcard subscriber has no id for the topic yet
		t.Fatalf("Inject sent %d datagrams", len(out))
	}
	for _, bad := range []struct {
		topic string
		qos   int8
	}{{"a/+", 0}, {"", 0}, {"a", 3}, {"a", -1}} {
		if _, err := n.Broker.Inject(n.Now(), bad.topic, nil, bad.qos, false, nil); err == nil {
			t.Errorf("Inject(%q, QoS %d) accepted", bad.topic, bad.qos)
		}
	}
	if s := n.Stats(); s.Retained != 1 || s.PublishesIn != 0 {
		t.Errorf("Retained=%d PublishesIn=%d (injected messages are not client publishes)", s.Retained, s.PublishesIn)
	}
}

func TestHooks(t *testing.T) {
	var events []string
	var pubs []string
	var stages []broker.Stage
	cfg := broker.Config{
		MaxSubsPerClient: 1,
		OnEvent: func(e broker.Event) {
			s := e.ClientID + ":"
			switch e.Kind {
			case broker.EventConnect:
				s += "connect"
			case broker.EventDisconnect:
				s += "disconnect/" + e.State.String()
			case broker.EventTakeover:
				s += "takeover"
			case broker.EventWill:
				s += "will " + e.Detail
			case broker.EventLimit:
				s += "limit " + e.Limit.String()
			}
			events = append(events, s)
		},
		OnPublish: func(topic string, payload []byte, qos int8, retain bool, origin broker.Origin) {
			pubs = append(pubs, topic+"="+string(payload)+map[broker.Origin]string{broker.OriginClient: "/client", broker.OriginWill: "/will", broker.OriginLocal: "/local"}[origin])
		},
		Trace: func(s broker.Stage) { stages = append(stages, s) },
	}
	n := newNet(t, cfg)
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "t", 0)
	sub.Subscribe(t, "u", 0) // over the limit
	c := n.NewClient("c", addr1)
	c.Connect(t, brokertest.ConnectOptions{KeepAlive: 10, Will: true, WillTopic: "t", WillMsg: "bye"})
	stages = nil
	c.Publish(0, packet.TopicNormal, c.Register(t, "t"), "hi", false)
	if !slices.Equal(stages, []broker.Stage{broker.StageDecoded, broker.StageMatched, broker.StageQueued}) {
		t.Errorf("trace stages %v", stages)
	}
	moved := n.NewClient("moved", addr4)
	moved.Connect(t, brokertest.ConnectOptions{ClientID: "c", KeepAlive: 10, Will: true, WillTopic: "t", WillMsg: "bye"})
	n.Advance(15 * time.Second)
	if _, err := n.Broker.Inject(n.Now(), "t", []byte("sys"), 0, false, nil); err != nil {
		t.Fatal(err)
	}
	sub.Send(disconnectPkt())
	want := []string{
		"sub:connect", "sub:limit subscriptions_per_client", "c:connect", "c:takeover", "c:connect",
		"c:disconnect/lost", "c:will t", "sub:disconnect/disconnected",
	}
	if !slices.Equal(events, want) {
		t.Errorf("events\n got %v\nwant %v", events, want)
	}
	if w := []string{"t=hi/client", "t=bye/will", "t=sys/local"}; !slices.Equal(pubs, w) {
		t.Errorf("OnPublish %v, want %v", pubs, w)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  broker.Config
		want string
	}{
		{broker.Config{AdvertiseInterval: 19 * time.Hour}, "advertise interval"},
		{broker.Config{RetryInterval: -time.Second}, "retry interval"},
		{broker.Config{MaxRetries: -1}, "max retries"},
		{broker.Config{MaxTopics: 65535}, "max topics"},
		{broker.Config{MaxPayload: 65535}, "max payload"},
		{broker.Config{InflightWindow: 2000}, "inflight window"},
		{broker.Config{Predefined: map[uint16]string{0: "a"}}, "reserved"},
		{broker.Config{Predefined: map[uint16]string{0xFFFF: "a"}}, "reserved"},
		{broker.Config{Predefined: map[uint16]string{1: "a/#"}}, "pre-defined topic 1"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error about %q", tc.cfg, err, tc.want)
		}
		if _, err := broker.New(tc.cfg); err == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
	}
	if err := broker.Defaults().Validate(); err != nil {
		t.Errorf("Defaults do not validate: %v", err)
	}
}

func TestStringers(t *testing.T) {
	for i := range broker.NumStates + 1 {
		if broker.State(i).String() == "" {
			t.Errorf("State(%d) has no name", i)
		}
	}
	for i := range broker.NumDrops + 1 {
		if broker.Drop(i).String() == "" {
			t.Errorf("Drop(%d) has no name", i)
		}
	}
	for i := range broker.NumLimits + 1 {
		if broker.Limit(i).String() == "" {
			t.Errorf("Limit(%d) has no name", i)
		}
	}
}

// Several Injects into one batch: each datagram keeps its own bytes (the arena is
// appended to, not reused, while out holds datagrams).
func TestInjectBatchKeepsEarlierDatagrams(t *testing.T) {
	n := newNet(t, broker.Config{})
	sub := n.NewClient("sub", addr2)
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "sys/a", 0)
	sub.Subscribe(t, "sys/b", 0)
	var out []broker.Datagram
	for _, m := range []struct{ topic, payload string }{{"sys/a", "first"}, {"sys/b", "second"}, {"sys/a", "third"}} {
		var err error
		if out, err = n.Broker.Inject(n.Now(), m.topic, []byte(m.payload), 0, false, out); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, d := range out {
		var p packet.Packet
		if err := packet.Decode(d.B, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(p.Data))
	}
	if !slices.Equal(got, []string{"first", "second", "third"}) {
		t.Errorf("batch payloads %q", got)
	}
}

// A refused CONNECT and an access denial are reported as events with the client's
// address and the reason, and connects carry the address (operators' logs need both).
func TestRefusalAndDenialEvents(t *testing.T) {
	var events []broker.Event
	cfg := broker.Config{OnEvent: func(e broker.Event) { events = append(events, e) }}
	cfg.Access = &broker.Access{Rules: []broker.Rule{
		{Allow: true, Client: "*", Action: broker.ActionSubscribe, Filter: "#"},
		{Allow: true, Client: "*", Action: broker.ActionPublish, Filter: "ok/#"},
	}}
	n := newNet(t, cfg)
	long := n.NewClient("long", addr1)
	long.Send(packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: packet.ProtocolID, Duration: 60,
		ClientID: []byte(strings.Repeat("x", 30))})
	long.Expect(t, packet.CONNACK)
	c := n.NewClient("c", addr2)
	c.Connect(t, brokertest.ConnectOptions{})
	c.Publish(0, packet.TopicNormal, c.Register(t, "secret/x"), "hi", false)
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%d %s %v %s", e.Kind, e.ClientID, e.Addr, e.Detail))
	}
	want := []string{
		fmt.Sprintf("%d %s %s client id of 30 octets (max_client_id_length 23)", broker.EventRefused, strings.Repeat("x", 30), addr1),
		fmt.Sprintf("%d c %s ", broker.EventConnect, addr2),
		fmt.Sprintf("%d c %s publish secret/x", broker.EventDenied, addr2),
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}
