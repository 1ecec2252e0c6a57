package broker_test

import (
	"flag"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
	"github.com/musqratt/musqratt/broker/packet"
)

var update = flag.Bool("update", false, "rewrite the transcripts in testdata and the generated fuzz seeds")

// Addresses used throughout: IPv4, IPv6, and a forwarder.
const (
	addr1 = "10.0.0.1:1000"
	addr2 = "[2001:db8::2]:1000"
	addr3 = "10.0.0.3:1000"
	addr4 = "[2001:db8::4]:4000"
	fwd   = "10.0.0.9:1883"
)

const retry = 10 * time.Second // T_RETRY in these tests (the default)

// newNet returns a network around a broker with cfg. ADVERTISE is off unless cfg sets
// it, so that the only timers are the ones under test; and so is the amplification bound
// (amplification_test.go covers it), so that scripted exchanges do not depend on byte
// counts: a test that wants it sets MaxAmplification.
func newNet(t testing.TB, cfg broker.Config) *brokertest.Net {
	t.Helper()
	if cfg.AdvertiseInterval == 0 {
		cfg.AdvertiseInterval = -1
	}
	if cfg.MaxAmplification == 0 {
		cfg.MaxAmplification = -1
	}
	return brokertest.New(t, cfg)
}

func qos(q packet.QoS) packet.Flags { return packet.Flags(0).WithQoS(q) }

func connectPkt(id string, f packet.Flags, duration uint16) packet.Packet {
	return packet.Packet{Type: packet.CONNECT, Flags: f, ProtocolID: packet.ProtocolID, Duration: duration, ClientID: []byte(id)}
}

func publishPkt(q packet.QoS, t packet.TopicIDType, topicID, msgID uint16, data string) packet.Packet {
	return packet.Packet{Type: packet.PUBLISH, Flags: qos(q).WithTopicIDType(t), TopicID: topicID, MsgID: msgID, Data: []byte(data)}
}

func pubackPkt(topicID, msgID uint16, rc packet.ReturnCode) packet.Packet {
	return packet.Packet{Type: packet.PUBACK, TopicID: topicID, MsgID: msgID, ReturnCode: rc}
}

// ack builds PUBREC, PUBREL, PUBCOMP or UNSUBACK.
func ack(t packet.Type, msgID uint16) packet.Packet { return packet.Packet{Type: t, MsgID: msgID} }

func disconnectPkt() packet.Packet { return packet.Packet{Type: packet.DISCONNECT} }

func sleepPkt(seconds uint16) packet.Packet {
	return packet.Packet{Type: packet.DISCONNECT, HasDuration: true, Duration: seconds}
}

func pingPkt(id string) packet.Packet {
	return packet.Packet{Type: packet.PINGREQ, ClientID: []byte(id)}
}

// clients returns the number of sessions in each state and in all.
func clients(s broker.Stats) (byState [broker.NumStates]int64, total int64) {
	for i, v := range s.ClientsByState {
		byState[i] = v
		total += v
	}
	return byState, total
}

func wantState(t *testing.T, n *brokertest.Net, st broker.State, want int64) {
	t.Helper()
	if got := n.Stats().ClientsByState[st]; got != want {
		t.Errorf("clients %v = %d, want %d (all: %v)", st, got, want, n.Stats().ClientsByState)
	}
}

// countData counts deliveries of payload data.
func countData(c *brokertest.Client, data string) int {
	k := 0
	for _, d := range c.Deliveries {
		if d.Data == data {
			k++
		}
	}
	return k
}
