package client

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// Topic names a topic the three ways MQTT-SN can: by name (registered on first use),
// by a pre-defined id, or by a two-octet short name.
type Topic struct {
	Type packet.TopicIDType
	Name string // TopicNormal: the name or filter; TopicShort: the two octets
	ID   uint16 // TopicPredefined
}

// Name is a topic by name. Publishing to it registers it first (once per connection).
func Name(name string) Topic { return Topic{Type: packet.TopicNormal, Name: name} }

// Predefined is a pre-defined topic id, agreed with the gateway's configuration.
func Predefined(id uint16) Topic { return Topic{Type: packet.TopicPredefined, ID: id} }

// Short is a two-octet short topic name, sent in place of a topic id.
func Short(name string) Topic { return Topic{Type: packet.TopicShort, Name: name} }

// Auto is Name, except that a two-octet name without wildcards is sent as a short
// name (as mqtt-sn-tools do): one fewer round trip, the same topic to subscribers.
func Auto(name string) Topic {
	if topic.IsShortName(name) {
		return Short(name)
	}
	return Name(name)
}

func (t Topic) String() string {
	switch t.Type {
	case packet.TopicPredefined:
		return fmt.Sprintf("pre-defined id %d", t.ID)
	case packet.TopicShort:
		return fmt.Sprintf("short name %q", t.Name)
	}
	return fmt.Sprintf("%q", t.Name)
}

func (t Topic) check() error {
	switch t.Type {
	case packet.TopicShort:
		if len(t.Name) != 2 {
			return fmt.Errorf("mqttsn: short topic name %q must be exactly 2 octets", t.Name)
		}
	case packet.TopicPredefined:
		if t.ID == packet.TopicIDReserved0 || t.ID == packet.TopicIDReservedMax {
			return fmt.Errorf("mqttsn: topic id 0x%04x is reserved", t.ID)
		}
	case packet.TopicNormal:
		if t.Name == "" {
			return fmt.Errorf("mqttsn: empty topic name")
		}
	default:
		return fmt.Errorf("mqttsn: topic id type %d is reserved", t.Type)
	}
	return nil
}

// MaxPayload is the longest payload one PUBLISH carries: the 65535 octets of the
// 3-octet Length form less the 9 of the header.
const MaxPayload = packet.MaxLen - 9

// CheckPublish reports whether t can be published to (a name without wildcards, a
// valid short name or pre-defined id), without a connection: a program checks its
// input before CONNECT, so a mistake costs no session and publishes no will.
func (t Topic) CheckPublish() error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Type == packet.TopicNormal {
		if err := topic.ValidateName(t.Name); err != nil {
			return fmt.Errorf("mqttsn: cannot publish to %q: %w", t.Name, err)
		}
	}
	return nil
}

// CheckSubscribe reports whether t can be subscribed to (a valid name or filter, short
// name or pre-defined id), without a connection (see CheckPublish).
func (t Topic) CheckSubscribe() error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Type == packet.TopicNormal {
		if err := topic.ValidateFilter(t.Name); err != nil {
			return fmt.Errorf("mqttsn: cannot subscribe to %q: %w", t.Name, err)
		}
	}
	return nil
}

func shortID(name string) uint16 { return uint16(name[0])<<8 | uint16(name[1]) }

// Register registers a topic name and returns its topic id.
func (c *Client) Register(ctx context.Context, name string) (uint16, error) {
	if err := topic.ValidateName(name); err != nil {
		return 0, fmt.Errorf("mqttsn: register: %w", err)
	}
	c.mu.Lock()
	id, ok := c.ids[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	m := c.msgID()
	r, err := c.request(ctx, &packet.Packet{Type: packet.REGISTER, MsgID: m, TopicName: []byte(name)}, packet.REGACK, m)
	if err != nil {
		return 0, fmt.Errorf("mqttsn: register %q: %w", name, err)
	}
	if r.code != packet.Accepted {
		return 0, &RejectedError{Op: "register " + name, Code: r.code}
	}
	c.mu.Lock()
	c.ids[name], c.names[r.topicID] = r.topicID, name
	c.mu.Unlock()
	return r.topicID, nil
}

// wire returns the TopicIdType and TopicId for publishing to t, registering a name.
func (c *Client) wire(ctx context.Context, t Topic) (packet.TopicIDType, uint16, error) {
	if err := t.check(); err != nil {
		return 0, 0, err
	}
	switch t.Type {
	case packet.TopicShort:
		return packet.TopicShort, shortID(t.Name), nil
	case packet.TopicPredefined:
		return packet.TopicPredefined, t.ID, nil
	}
	if strings.ContainsAny(t.Name, "+#") {
		return 0, 0, fmt.Errorf("mqttsn: cannot publish to %q: wildcards are for subscriptions", t.Name)
	}
	id, err := c.Register(ctx, t.Name)
	return packet.TopicNormal, id, err
}

// Publish sends payload to t at QoS 0, 1 or 2 and, for QoS 1 and 2, returns once the
// gateway has acknowledged it (PUBACK; PUBREC, PUBREL, PUBCOMP). A QoS 0 publish
// returns once sent. For QoS -1 use PublishQoSMinus1, which needs no connection.
func (c *Client) Publish(ctx context.Context, t Topic, payload []byte, qos packet.QoS, retain bool) error {
	if qos < packet.QoS0 || qos > packet.QoS2 {
		return fmt.Errorf("mqttsn: publish QoS %d: a connected client publishes at QoS 0, 1 or 2", qos)
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("mqttsn: publish to %v: payload %d octets, max %d", t, len(payload), MaxPayload)
	}
	tt, id, err := c.wire(ctx, t)
	if err != nil {
		return err
	}
	p := packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(qos).WithTopicIDType(tt) | retainFlag(retain),
		TopicID: id, Data: payload}
	if qos == packet.QoS0 {
		// Serialised with requests so a QoS 0 publish never overtakes a REGISTER.
		c.reqMu.Lock()
		defer c.reqMu.Unlock()
		return c.send(&p)
	}
	p.MsgID = c.msgID()
	want := packet.PUBACK
	if qos == packet.QoS2 {
		want = packet.PUBREC
	}
	r, err := c.request(ctx, &p, want, p.MsgID)
	if err != nil {
		return fmt.Errorf("mqttsn: publish to %v: %w", t, err)
	}
	if r.typ == packet.PUBACK && r.code != packet.Accepted {
		if r.code == packet.InvalidTopicID && tt == packet.TopicNormal {
			c.forget(t.Name, id)
		}
		return &RejectedError{Op: "publish to " + t.String(), Code: r.code}
	}
	if qos == packet.QoS2 {
		if _, err := c.request(ctx, &packet.Packet{Type: packet.PUBREL, MsgID: p.MsgID}, packet.PUBCOMP, p.MsgID); err != nil {
			return fmt.Errorf("mqttsn: publish to %v: PUBREL: %w", t, err)
		}
	}
	return nil
}

// forget drops a registration the gateway no longer knows (after a restart or
// a session it lost), so the next publish registers again.
func (c *Client) forget(name string, id uint16) {
	c.mu.Lock()
	delete(c.ids, name)
	delete(c.names, id)
	c.mu.Unlock()
}

// Subscribe subscribes to t (a name or filter with + and #, a pre-defined id, or a
// short name) at qos and returns the QoS the gateway granted and, for a name without
// wildcards, its topic id.
func (c *Client) Subscribe(ctx context.Context, t Topic, qos packet.QoS) (granted packet.QoS, topicID uint16, err error) {
	if qos < packet.QoS0 || qos > packet.QoS2 {
		return 0, 0, fmt.Errorf("mqttsn: subscribe QoS %d: must be 0, 1 or 2", qos)
	}
	p, err := subscribePacket(packet.SUBSCRIBE, t)
	if err != nil {
		return 0, 0, err
	}
	p.Flags = p.Flags.WithQoS(qos)
	p.MsgID = c.msgID()
	w := &waiter{want: packet.SUBACK, msgID: p.MsgID}
	if t.Type == packet.TopicNormal && !topic.IsWildcard(t.Name) {
		// The reader learns the id from the SUBACK itself: a retained message right
		// behind it must find its name already known.
		w.learn = t.Name
	}
	r, err := c.do(ctx, &p, w)
	if err != nil {
		return 0, 0, fmt.Errorf("mqttsn: subscribe to %v: %w", t, err)
	}
	if r.code != packet.Accepted {
		return 0, 0, &RejectedError{Op: "subscribe to " + t.String(), Code: r.code}
	}
	return r.flags.QoS(), r.topicID, nil
}

// Unsubscribe removes the subscription to t.
func (c *Client) Unsubscribe(ctx context.Context, t Topic) error {
	p, err := subscribePacket(packet.UNSUBSCRIBE, t)
	if err != nil {
		return err
	}
	p.MsgID = c.msgID()
	if _, err := c.request(ctx, &p, packet.UNSUBACK, p.MsgID); err != nil {
		return fmt.Errorf("mqttsn: unsubscribe from %v: %w", t, err)
	}
	return nil
}

func subscribePacket(typ packet.Type, t Topic) (packet.Packet, error) {
	if err := t.check(); err != nil {
		return packet.Packet{}, err
	}
	p := packet.Packet{Type: typ, Flags: packet.Flags(0).WithTopicIDType(t.Type)}
	switch t.Type {
	case packet.TopicNormal:
		if err := topic.ValidateFilter(t.Name); err != nil {
			return p, fmt.Errorf("mqttsn: %w", err)
		}
		p.TopicName = []byte(t.Name)
	case packet.TopicShort:
		p.TopicID = shortID(t.Name)
	case packet.TopicPredefined:
		p.TopicID = t.ID
	}
	return p, nil
}

// PublishQoSMinus1 sends one QoS -1 PUBLISH on conn (connected to the gateway): no
// CONNECT, no answer. Only a pre-defined id or a short name can be used (6.8).
func PublishQoSMinus1(conn net.Conn, t Topic, payload []byte, retain bool) error {
	p, err := QoSMinus1Packet(t, payload, retain)
	if err != nil {
		return err
	}
	_, err = conn.Write(packet.Append(nil, &p))
	return err
}

func checkQoSMinus1(t Topic) error {
	if t.Type == packet.TopicNormal {
		return fmt.Errorf("mqttsn: QoS -1 needs a pre-defined topic id or a short name, not %v", t)
	}
	return t.check()
}
