package brokertest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

// fakeTB records failures instead of failing, to test that the doubles catch what
// they must. Fatal stops the calling goroutine as testing.T does.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Errorf(format, args...); panic(fatal{}) }
func (f *fakeTB) Fatal(args ...any)                 { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Logf(string, ...any)               {}

type fatal struct{}

// fails runs fn and returns what it reported.
func fails(fn func(tb *fakeTB)) []string {
	var f fakeTB
	func() {
		defer func() {
			if r := recover(); r != nil && r != (fatal{}) {
				panic(r)
			}
		}()
		fn(&f)
	}()
	return f.errors
}

func TestClock(t *testing.T) {
	c := brokertest.NewClock(brokertest.Start)
	if got := brokertest.Since(c.Advance(time.Second)); got != time.Second {
		t.Fatalf("Since = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("moving the clock backwards did not panic")
		}
	}()
	c.Set(brokertest.Start)
}

func TestExpectFailures(t *testing.T) {
	cases := map[string]func(tb *fakeTB){
		"empty inbox": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			n.NewClient("c", "10.0.0.1:1").Expect(tb, packet.CONNACK)
		},
		"wrong type": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			c := n.NewClient("c", "10.0.0.1:1")
			c.Send(packet.Packet{Type: packet.PINGREQ})
			c.Expect(tb, packet.CONNACK)
		},
		"failed check": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			c := n.NewClient("c", "10.0.0.1:1")
			c.Send(packet.Packet{Type: packet.CONNECT, ProtocolID: 2, ClientID: []byte("c")})
			c.Expect(tb, packet.CONNACK, brokertest.RC(packet.Accepted))
		},
		"something left": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			c := n.NewClient("c", "10.0.0.1:1")
			c.Send(packet.Packet{Type: packet.PINGREQ})
			c.ExpectNothing(tb)
		},
		"not awaited": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			n.NewClient("c", "10.0.0.1:1").Await(tb, packet.SUBACK)
		},
		"leak": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			n.NewClient("c", "10.0.0.1:1").Connect(tb, brokertest.ConnectOptions{})
			n.CheckEmpty(tb)
		},
		"same address twice": func(tb *fakeTB) {
			n := brokertest.New(tb, broker.Config{})
			n.NewClient("a", "10.0.0.1:1")
			n.NewClient("b", "10.0.0.1:1")
		},
	}
	for name, fn := range cases {
		if errs := fails(fn); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}

func TestImpairmentIsSeeded(t *testing.T) {
	run := func(seed uint64) string {
		n := brokertest.New(t, broker.Config{AdvertiseInterval: -1})
		n.Seed(seed)
		n.KeepLog = true
		n.Impair = brokertest.Impairment{Loss: 0.3, Duplicate: 0.2, Reorder: 0.2}
		c := n.NewClient("c", "10.0.0.1:1")
		for range 50 {
			c.Send(packet.Packet{Type: packet.SEARCHGW, Radius2: 1})
		}
		var b strings.Builder
		for _, r := range n.Log {
			fmt.Fprintf(&b, "%v%v ", r.Dir, r.Verdict)
		}
		return b.String()
	}
	a, b, other := run(1), run(1), run(2)
	if a != b {
		t.Error("same seed, different runs")
	}
	if a == other {
		t.Error("different seeds, same run")
	}
	for _, v := range []brokertest.Verdict{brokertest.Drop, brokertest.Duplicate, brokertest.Delay} {
		if !strings.Contains(a, v.String()) {
			t.Errorf("no %v in 100 datagrams", v)
		}
	}
}

func TestFaults(t *testing.T) {
	n := brokertest.New(t, broker.Config{AdvertiseInterval: -1})
	c := n.NewClient("c", "10.0.0.1:1")
	dup := n.DupNext(brokertest.ToClient, c, packet.GWINFO)
	drop := n.AddFault(brokertest.Fault{Dir: brokertest.ToBroker, Type: packet.SEARCHGW, Verdict: brokertest.Drop, Count: 2})
	for range 3 {
		c.Send(packet.Packet{Type: packet.SEARCHGW, Radius2: 1})
	}
	if got := len(c.Drain()); got != 2 || dup.Fired != 1 || drop.Fired != 2 || drop.Hit.Type != packet.SEARCHGW {
		t.Fatalf("received %d, dup fired %d, drop fired %d", got, dup.Fired, drop.Fired)
	}
}

func TestForwardedClientRouting(t *testing.T) {
	n := brokertest.New(t, broker.Config{AdvertiseInterval: -1})
	a := n.NewForwardedClient("a", "10.0.0.9:1", []byte{1})
	b := n.NewForwardedClient("b", "10.0.0.9:1", []byte{2})
	a.Send(packet.Packet{Type: packet.SEARCHGW})
	b.ExpectNothing(t)
	if p := a.Expect(t, packet.GWINFO); !p.Encapsulated || p.NodeID[0] != 1 {
		t.Fatalf("%s", brokertest.Describe(&p))
	}
}

func TestTranscriptErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown directive": "frobnicate\n",
		"unknown sender":    "t=0 c9> 0216\n",
		"bad hex":           "client c 10.0.0.1:1\nt=0 c> 02zz\n",
		"time backwards":    "client c 10.0.0.1:1\nt=5s tick\nt=1s tick\n",
		"late config":       "t=0 tick\nconfig retry=1s\n",
		"bad config":        "config nonsense=1\n",
		"output differs":    "client c 10.0.0.1:1\nt=0 c> 0216\n< c 0217\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".txt")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if errs := fails(func(tb *fakeTB) { brokertest.RunTranscript(tb, path, false) }); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, p := range []packet.Packet{
		{Type: packet.ADVERTISE, GwID: 1, Duration: 900},
		{Type: packet.GWINFO, GwID: 1, GwAddr: []byte{1}},
		{Type: packet.CONNECT, Flags: packet.FlagWill | packet.FlagCleanSession, ProtocolID: 1, ClientID: []byte("c")},
		{Type: packet.WILLTOPIC, Flags: packet.FlagRetain, WillTopic: []byte("w")},
		{Type: packet.WILLTOPIC},
		{Type: packet.WILLMSG, WillMsg: []byte("m")},
		{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithTopicIDType(packet.TopicShort), TopicID: 0x6162},
		{Type: packet.PUBLISH, Flags: packet.Flags(0).WithTopicIDType(packet.TopicPredefined), TopicID: 7},
		{Type: packet.PINGREQ, ClientID: []byte("c")},
		{Type: packet.DISCONNECT, HasDuration: true, Duration: 5},
		{Type: packet.PUBREL, MsgID: 3, Encapsulated: true, NodeID: []byte{1}},
	} {
		if d := brokertest.Describe(&p); !strings.HasPrefix(d, p.Type.String()) && !p.Encapsulated {
			t.Errorf("Describe(%v) = %q", p.Type, d)
		}
	}
	if d := brokertest.DescribeBytes([]byte{1}); !strings.HasPrefix(d, "malformed") {
		t.Errorf("DescribeBytes of garbage = %q", d)
	}
}
