package brokertest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// Received is one datagram a client (or the broadcast medium) received.
type Received struct {
	At     time.Time
	Packet packet.Packet // decoded from Raw, which it aliases
	Raw    []byte
	Mark   uint64 // the Datagram.Mark the broker gave it
}

// Delivery is a message an Auto client handed to its application.
type Delivery struct {
	At     time.Time
	Topic  string // resolved from the topic id; "" if the client had no name for it
	Data   string
	QoS    packet.QoS
	Retain bool
	DUP    bool
	MsgID  uint16
}

// Client is one simulated MQTT-SN client. Its zero value is unusable: add clients with
// Net.NewClient or Net.NewForwardedClient.
type Client struct {
	Name   string
	Addr   netip.AddrPort
	Node   []byte // the wireless node id when behind a forwarder, else nil
	Radius uint8  // the Ctrl radius it puts in its encapsulation

	// HearBroadcasts makes the broker's broadcasts land in this client's inbox too.
	HearBroadcasts bool

	// Auto makes the client answer as a conforming client would (see the package doc).
	Auto bool
	// RegackRC, if set, decides an Auto client's REGACK to a broker REGISTER.
	RegackRC func(topic string) packet.ReturnCode

	// Topics maps the normal topic ids the client has learned (REGISTER from the
	// broker, REGACK, SUBACK) to their names.
	Topics map[uint16]string
	// Deliveries are the messages an Auto client delivered to its application, in order.
	Deliveries []Delivery
	// Acks are the final acknowledgements (PUBACK, PUBCOMP) of an Auto client's own
	// QoS 1/2 publishes; GaveUp counts those it abandoned after ClientMaxRetries.
	Acks   []packet.Packet
	GaveUp int

	BytesSent, BytesReceived int
	// LastMsgID is the msg id of the last REGISTER, QoS 1/2 PUBLISH or PUBREL received:
	// the one the client's next acknowledgement names.
	LastMsgID uint16

	n         *Net
	inbox     []Received
	qos2      map[uint16]bool   // QoS 2 msg ids received and not yet released
	naming    map[uint16]string // msg id of an outstanding REGISTER or SUBSCRIBE → its topic
	released  [8]released       // recently released QoS 2 deliveries
	relNext   int
	pending   []*outgoing
	nextMsgID uint16
}

// released remembers a QoS 2 delivery after PUBREL for one retry interval: on a link
// that duplicates and reorders, a copy of the PUBLISH can arrive after the exchange
// ended (the broker keeps the same memory for the other direction).
type released struct {
	msgID uint16
	data  string
	at    time.Time
}

type outgoing struct {
	p        packet.Packet
	awaiting packet.Type
	retries  int
	deadline time.Time
}

func (c *Client) key() peerKey { return peerKey{addr: c.Addr, node: string(c.Node)} }

func (c *Client) String() string {
	if c.Node != nil {
		return fmt.Sprintf("%s(%v node %x)", c.Name, c.Addr, c.Node)
	}
	return fmt.Sprintf("%s(%v)", c.Name, c.Addr)
}

// NewMsgID returns the client's next message id (never 0).
func (c *Client) NewMsgID() uint16 {
	c.nextMsgID++
	if c.nextMsgID == 0 {
		c.nextMsgID = 1
	}
	return c.nextMsgID
}

// Send encodes p (wrapped for the forwarder when the client has a Node), transmits it and
// runs the network until it is quiet.
func (c *Client) Send(p packet.Packet) {
	c.n.TB.Helper()
	c.send(&p)
	c.n.Run()
}

func (c *Client) send(p *packet.Packet) {
	if c.Node != nil {
		p.Encapsulated, p.Radius, p.NodeID = true, c.Radius, c.Node
	}
	c.n.transmit(ToBroker, c, packet.Append(nil, p), 0)
}

// SendRaw transmits b from the client's address exactly as given (no encapsulation) and
// runs the network until it is quiet.
func (c *Client) SendRaw(b []byte) {
	c.n.TB.Helper()
	c.n.transmit(ToBroker, c, append([]byte(nil), b...), 0)
	c.n.Run()
}

func (c *Client) receive(b []byte, mark uint64) {
	c.BytesReceived += len(b)
	r := Received{At: c.n.Now(), Raw: b, Mark: mark}
	if err := packet.Decode(b, &r.Packet); err != nil {
		c.n.TB.Errorf("brokertest: %s received malformed %x: %v", c.Name, b, err)
		return
	}
	c.inbox = append(c.inbox, r)
	if p := &r.Packet; p.Type == packet.REGISTER || p.Type == packet.PUBREL || p.Type == packet.PUBLISH && p.Flags.QoS() > packet.QoS0 {
		c.LastMsgID = p.MsgID
	}
	// Learn topic ids as a client does, on receipt: a retained PUBLISH can follow the
	// SUBACK in the same burst.
	if p := &r.Packet; (p.Type == packet.SUBACK || p.Type == packet.REGACK) && p.ReturnCode == packet.Accepted {
		if name, ok := c.naming[p.MsgID]; ok && p.TopicID != 0 && !c.namesItself(name) {
			c.Topics[p.TopicID] = name
		}
		delete(c.naming, p.MsgID)
	}
	if c.Auto {
		c.auto(&r)
	}
}

// Check inspects an expected packet and says what is wrong with it, or returns nil.
type Check func(p *packet.Packet) error

// Expect takes the oldest datagram from the inbox; the test fails unless it is of type
// t and passes every check. It returns the packet.
func (c *Client) Expect(tb testing.TB, t packet.Type, checks ...Check) packet.Packet {
	tb.Helper()
	if len(c.inbox) == 0 {
		tb.Fatalf("%s: expected %v, inbox empty", c.Name, t)
	}
	r := c.inbox[0]
	c.inbox = c.inbox[1:]
	if r.Packet.Type != t {
		tb.Fatalf("%s: expected %v, got %s (rest of inbox: %s)", c.Name, t, Describe(&r.Packet), c.describeInbox())
	}
	for _, ck := range checks {
		if err := ck(&r.Packet); err != nil {
			tb.Fatalf("%s: %s: %v", c.Name, Describe(&r.Packet), err)
		}
	}
	return r.Packet
}

// Await discards datagrams from the inbox until one of type t passes every check, and
// returns it; the test fails if none does. For clients whose inbox holds other traffic.
func (c *Client) Await(tb testing.TB, t packet.Type, checks ...Check) packet.Packet {
	tb.Helper()
	skipped := c.describeInbox()
next:
	for len(c.inbox) > 0 {
		r := c.inbox[0]
		c.inbox = c.inbox[1:]
		if r.Packet.Type != t {
			continue
		}
		for _, ck := range checks {
			if ck(&r.Packet) != nil {
				continue next
			}
		}
		return r.Packet
	}
	tb.Fatalf("%s: awaited %v, not in inbox: %s", c.Name, t, skipped)
	return packet.Packet{}
}

// ExpectNothing fails the test if the inbox holds anything.
func (c *Client) ExpectNothing(tb testing.TB) {
	tb.Helper()
	if len(c.inbox) > 0 {
		tb.Fatalf("%s: expected nothing, inbox holds %s", c.Name, c.describeInbox())
	}
}

// Drain empties the inbox and returns what it held.
func (c *Client) Drain() []Received {
	r := c.inbox
	c.inbox = nil
	return r
}

// Inbox returns what the client has received and not yet consumed.
func (c *Client) Inbox() []Received { return c.inbox }

func (c *Client) describeInbox() string {
	if len(c.inbox) == 0 {
		return "(empty)"
	}
	parts := make([]string, len(c.inbox))
	for i := range c.inbox {
		parts[i] = Describe(&c.inbox[i].Packet)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// Checks for Expect.

// RC checks the ReturnCode.
func RC(rc packet.ReturnCode) Check {
	return func(p *packet.Packet) error {
		if p.ReturnCode != rc {
			return fmt.Errorf("return code %d, want %d", p.ReturnCode, rc)
		}
		return nil
	}
}

// MsgID checks the MsgId.
func MsgID(id uint16) Check {
	return func(p *packet.Packet) error {
		if p.MsgID != id {
			return fmt.Errorf("msg id %d, want %d", p.MsgID, id)
		}
		return nil
	}
}

// TopicID checks the TopicId field.
func TopicID(id uint16) Check {
	return func(p *packet.Packet) error {
		if p.TopicID != id {
			return fmt.Errorf("topic id %d, want %d", p.TopicID, id)
		}
		return nil
	}
}

// TopicIDType checks the flags' TopicIdType.
func TopicIDType(t packet.TopicIDType) Check {
	return func(p *packet.Packet) error {
		if p.Flags.TopicIDType() != t {
			return fmt.Errorf("topic id type %v, want %v", p.Flags.TopicIDType(), t)
		}
		return nil
	}
}

// QoS checks the flags' QoS.
func QoS(q packet.QoS) Check {
	return func(p *packet.Packet) error {
		if p.Flags.QoS() != q {
			return fmt.Errorf("QoS %d, want %d", p.Flags.QoS(), q)
		}
		return nil
	}
}

// DUP checks the DUP flag.
func DUP(want bool) Check {
	return func(p *packet.Packet) error {
		if p.Flags.DUP() != want {
			return fmt.Errorf("DUP %v, want %v", p.Flags.DUP(), want)
		}
		return nil
	}
}

// Retain checks the Retain flag.
func Retain(want bool) Check {
	return func(p *packet.Packet) error {
		if p.Flags.Retain() != want {
			return fmt.Errorf("Retain %v, want %v", p.Flags.Retain(), want)
		}
		return nil
	}
}

// Data checks a PUBLISH payload.
func Data(s string) Check {
	return func(p *packet.Packet) error {
		if string(p.Data) != s {
			return fmt.Errorf("data %q, want %q", p.Data, s)
		}
		return nil
	}
}

// Name checks the TopicName of a REGISTER.
func Name(s string) Check {
	return func(p *packet.Packet) error {
		if string(p.TopicName) != s {
			return fmt.Errorf("topic name %q, want %q", p.TopicName, s)
		}
		return nil
	}
}

// ConnectOptions describe a CONNECT for Client.Connect. The zero value is a clean
// session, no keep-alive, no will, with the client's Name as ClientId.
type ConnectOptions struct {
	ClientID   string
	Persistent bool   // CleanSession=0
	KeepAlive  uint16 // seconds; 0 disables
	Will       bool   // run the will exchange with the fields below
	WillTopic  string
	WillMsg    string
	WillQoS    packet.QoS
	WillRetain bool
}

// Connect runs a CONNECT (with the will exchange if asked) and fails the test unless it
// ends in CONNACK accepted. What follows the CONNACK stays in the inbox.
func (c *Client) Connect(tb testing.TB, o ConnectOptions) {
	tb.Helper()
	id := o.ClientID
	if id == "" {
		id = c.Name
	}
	var f packet.Flags
	if !o.Persistent {
		f |= packet.FlagCleanSession
	}
	if o.Will {
		f |= packet.FlagWill
	}
	c.Send(packet.Packet{Type: packet.CONNECT, Flags: f, ProtocolID: packet.ProtocolID, Duration: o.KeepAlive, ClientID: []byte(id)})
	if o.Will {
		c.Expect(tb, packet.WILLTOPICREQ)
		wf := packet.Flags(0).WithQoS(o.WillQoS)
		if o.WillRetain {
			wf |= packet.FlagRetain
		}
		c.Send(packet.Packet{Type: packet.WILLTOPIC, Flags: wf, WillTopic: []byte(o.WillTopic)})
		if o.WillTopic != "" {
			c.Expect(tb, packet.WILLMSGREQ)
			c.Send(packet.Packet{Type: packet.WILLMSG, WillMsg: []byte(o.WillMsg)})
		}
	}
	c.Expect(tb, packet.CONNACK, RC(packet.Accepted))
}

// Register sends REGISTER for name and returns the topic id of the accepted REGACK.
func (c *Client) Register(tb testing.TB, name string) uint16 {
	tb.Helper()
	id := c.NewMsgID()
	c.expectName(id, name)
	c.Send(packet.Packet{Type: packet.REGISTER, MsgID: id, TopicName: []byte(name)})
	p := c.Await(tb, packet.REGACK, MsgID(id))
	if p.ReturnCode != packet.Accepted || p.TopicID == 0 {
		tb.Fatalf("%s: REGISTER %q: %s", c.Name, name, Describe(&p))
	}
	c.Topics[p.TopicID] = name
	return p.TopicID
}

// Subscribe subscribes to a topic name or filter and returns the SUBACK, whatever its
// return code; an accepted topic id is remembered.
func (c *Client) Subscribe(tb testing.TB, filter string, qos packet.QoS) packet.Packet {
	tb.Helper()
	id := c.NewMsgID()
	c.expectName(id, filter)
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(qos), MsgID: id, TopicName: []byte(filter)})
	return c.Await(tb, packet.SUBACK, MsgID(id))
}

// expectName remembers the topic of an outstanding REGISTER or SUBSCRIBE, so that the
// id in its REGACK or SUBACK is learned on receipt.
func (c *Client) expectName(msgID uint16, name string) {
	if c.naming == nil {
		c.naming = make(map[uint16]string)
	}
	c.naming[msgID] = name
}

// SubscribeID subscribes by pre-defined topic id or short name and returns the SUBACK.
func (c *Client) SubscribeID(tb testing.TB, t packet.TopicIDType, topicID uint16, qos packet.QoS) packet.Packet {
	tb.Helper()
	id := c.NewMsgID()
	c.Send(packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(qos).WithTopicIDType(t), MsgID: id, TopicID: topicID})
	return c.Await(tb, packet.SUBACK, MsgID(id))
}

// Publish sends a PUBLISH on a topic id and returns its msg id (0 for QoS 0 and -1). An
// Auto client then sees it through: PUBREL on PUBREC, and retransmission with DUP until
// acknowledged or ClientMaxRetries resends have gone unanswered.
func (c *Client) Publish(qos packet.QoS, t packet.TopicIDType, topicID uint16, data string, retain bool) uint16 {
	c.n.TB.Helper()
	p := packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(qos).WithTopicIDType(t), TopicID: topicID, Data: []byte(data)}
	if retain {
		p.Flags |= packet.FlagRetain
	}
	if qos > packet.QoS0 {
		p.MsgID = c.NewMsgID()
		if c.Auto {
			o := &outgoing{p: p, awaiting: packet.PUBACK, deadline: c.n.Now().Add(c.n.ClientRetry)}
			if qos == packet.QoS2 {
				o.awaiting = packet.PUBREC
			}
			c.pending = append(c.pending, o)
		}
	}
	c.Send(p)
	return p.MsgID
}

// Outstanding is how many of an Auto client's own publishes await acknowledgement.
func (c *Client) Outstanding() int { return len(c.pending) }

// DeliveredData returns the payloads of the Auto client's deliveries, in order.
func (c *Client) DeliveredData() []string {
	s := make([]string, len(c.Deliveries))
	for i, d := range c.Deliveries {
		s[i] = d.Data
	}
	return s
}

// auto answers what a conforming client must answer.
func (c *Client) auto(r *Received) {
	p := &r.Packet
	switch p.Type {
	case packet.PUBLISH:
		name, known := c.topicName(p)
		q := p.Flags.QoS()
		if !known && q > packet.QoS0 {
			// 6.12: a PUBLISH on an id the client does not know is rejected.
			c.send(&packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.InvalidTopicID})
			return
		}
		d := Delivery{At: r.At, Topic: name, Data: string(p.Data), QoS: q, Retain: p.Flags.Retain(), DUP: p.Flags.DUP(), MsgID: p.MsgID}
		switch q {
		case packet.QoS1:
			c.Deliveries = append(c.Deliveries, d)
			c.send(&packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
		case packet.QoS2:
			if c.qos2 == nil {
				c.qos2 = make(map[uint16]bool)
			}
			if !c.qos2[p.MsgID] && !c.recentlyReleased(p) {
				c.qos2[p.MsgID] = true
				c.Deliveries = append(c.Deliveries, d)
			}
			c.send(&packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
		default:
			if known {
				c.Deliveries = append(c.Deliveries, d)
			}
		}
	case packet.PUBREL:
		if c.qos2[p.MsgID] {
			for i := len(c.Deliveries) - 1; i >= 0; i-- {
				if d := c.Deliveries[i]; d.MsgID == p.MsgID && d.QoS == packet.QoS2 {
					c.released[c.relNext%len(c.released)] = released{msgID: p.MsgID, data: d.Data, at: r.At}
					c.relNext++
					break
				}
			}
		}
		delete(c.qos2, p.MsgID)
		c.send(&packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
	case packet.REGISTER:
		rc := packet.Accepted
		if c.RegackRC != nil {
			rc = c.RegackRC(string(p.TopicName))
		}
		if rc == packet.Accepted {
			c.Topics[p.TopicID] = string(p.TopicName)
		}
		c.send(&packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: rc})
	case packet.PINGREQ:
		c.send(&packet.Packet{Type: packet.PINGRESP})
	case packet.PUBACK:
		if i := c.findPending(p.MsgID); i >= 0 && c.pending[i].awaiting != packet.PUBCOMP {
			c.Acks = append(c.Acks, *p)
			c.removePending(i)
		}
	case packet.PUBREC:
		if i := c.findPending(p.MsgID); i >= 0 {
			o := c.pending[i]
			if o.awaiting == packet.PUBREC {
				o.awaiting, o.retries = packet.PUBCOMP, 0
			}
			o.deadline = c.n.Now().Add(c.n.ClientRetry)
			c.send(&packet.Packet{Type: packet.PUBREL, MsgID: p.MsgID})
		}
	case packet.PUBCOMP:
		if i := c.findPending(p.MsgID); i >= 0 && c.pending[i].awaiting == packet.PUBCOMP {
			c.Acks = append(c.Acks, *p)
			c.removePending(i)
		}
	}
}

func (c *Client) recentlyReleased(p *packet.Packet) bool {
	for _, r := range c.released {
		if r.msgID == p.MsgID && !r.at.IsZero() && c.n.Now().Sub(r.at) < c.n.ClientRetry && r.data == string(p.Data) {
			return true
		}
	}
	return false
}

// namesItself reports whether the client names topic without a normal id: a short name,
// or a pre-defined topic (the SUBACK's id is then the pre-defined id).
func (c *Client) namesItself(topic string) bool {
	if len(topic) == 2 {
		return true
	}
	for _, name := range c.n.Config.Predefined {
		if name == topic {
			return true
		}
	}
	return false
}

func (c *Client) topicName(p *packet.Packet) (string, bool) {
	switch p.Flags.TopicIDType() {
	case packet.TopicShort:
		return string([]byte{byte(p.TopicID >> 8), byte(p.TopicID)}), true
	case packet.TopicPredefined:
		name, ok := c.n.Config.Predefined[p.TopicID]
		return name, ok
	}
	name, ok := c.Topics[p.TopicID]
	return name, ok
}

func (c *Client) findPending(msgID uint16) int {
	for i, o := range c.pending {
		if o.p.MsgID == msgID {
			return i
		}
	}
	return -1
}

func (c *Client) removePending(i int) {
	c.pending = append(c.pending[:i], c.pending[i+1:]...)
}

func (c *Client) nextDeadline() time.Time {
	var d time.Time
	for _, o := range c.pending {
		if d.IsZero() || o.deadline.Before(d) {
			d = o.deadline
		}
	}
	return d
}

// tick retransmits the Auto client's overdue PUBLISH (with DUP) or PUBREL (6.13).
func (c *Client) tick(now time.Time) {
	for i := 0; i < len(c.pending); i++ {
		o := c.pending[i]
		if now.Before(o.deadline) {
			continue
		}
		if o.retries >= c.n.ClientMaxRetries {
			c.GaveUp++
			c.removePending(i)
			i--
			continue
		}
		o.retries++
		o.deadline = now.Add(c.n.ClientRetry)
		if o.awaiting == packet.PUBCOMP {
			c.send(&packet.Packet{Type: packet.PUBREL, MsgID: o.p.MsgID})
			continue
		}
		p := o.p
		p.Flags |= packet.FlagDUP
		c.send(&p)
	}
}
