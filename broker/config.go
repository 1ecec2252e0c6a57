package broker

import (
	"fmt"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// Config holds the engine's protocol parameters and limits. The zero value of any field
// means its default (see Defaults); Validate reports fields out of range.
type Config struct {
	GatewayID uint8 // GwId in ADVERTISE and GWINFO

	// AdvertiseInterval is T_ADV: how often ADVERTISE is broadcast. The spec asks for
	// at least 15 minutes. Negative disables ADVERTISE.
	AdvertiseInterval time.Duration
	// RetryInterval is T_RETRY: how long the broker waits for the acknowledgement of
	// its own PUBLISH (QoS 1/2), PUBREL or REGISTER before resending it with DUP set.
	RetryInterval time.Duration
	// MaxRetries is N_RETRY: resends before the client is considered lost.
	MaxRetries int

	// Predefined maps pre-defined topic ids to topic names (configured on both sides).
	Predefined map[uint16]string

	MaxClients         int  // sessions (connected, asleep or persistent); CONNACK congestion beyond
	MaxTopics          int  // distinct registered topic names; REGACK congestion beyond
	MaxTopicsPerClient int  // registrations a client may hold; REGACK congestion beyond
	MaxSubsPerClient   int  // subscriptions a client may hold; SUBACK congestion beyond
	MaxQueuedPerClient int  // deliveries queued behind the window; beyond, publishers wait (QueueFullPolicy)
	MaxSleepBuffer     int  // messages buffered for an asleep client; dropped and counted beyond
	MaxQoS2Incoming    int  // QoS 2 PUBLISHes from one client awaiting PUBREL; PUBACK congestion beyond
	MaxPayload         int  // PUBLISH payload octets; PUBACK congestion beyond
	MaxRetained        int  // retained topics; a new retained topic beyond is not stored (counted)
	MaxClientIDLen     int  // 23 in v1.2; CONNACK "not supported" beyond
	InflightWindow     int  // QoS 1/2 PUBLISHes outstanding per client; 1 is the spec, more is an opt-in extension
	MaxTopicLength     int  // octets of a topic name or filter a client may register or subscribe; REGACK/SUBACK 0x03 beyond
	MaxTopicLevels     int  // levels ('/'-separated) of a topic name or filter; REGACK/SUBACK 0x03 beyond
	RequireSameAddress bool // refuse a takeover or wake-up of a session from a different address

	// Client slots that come back (docs/config.md, "Limits"). MaxClientsPerAddress
	// bounds the sessions bound to one IP address (any port or forwarder node);
	// MaxConnecting the CONNECTs whose will exchange is unfinished, abandoned after
	// ConnectTimeout; both answer CONNACK congestion beyond. MaxKeepAlive caps the
	// keep-alive a client announces, and is the keep-alive of one that announces 0
	// (none), so that a slot held by silence is reclaimed.
	MaxClientsPerAddress int
	MaxConnecting        int
	ConnectTimeout       time.Duration
	MaxKeepAlive         time.Duration

	// QueueFullPolicy says what a client's QoS 1/2 PUBLISH meets when a matching
	// connected subscriber's outbox is full (MaxQueuedPerClient): PolicyBlock (the
	// default) holds it, unacknowledged, until there is room; PolicyDrop delivers it
	// where there is room, drops it (counted) elsewhere, and acknowledges it at once.
	QueueFullPolicy QueueFullPolicy
	// MaxHeldPerClient bounds the publications held for one publisher; PUBACK
	// congestion beyond. MaxHoldTime bounds how long one is held; PUBACK congestion
	// after (docs/reliability.md, "Back-pressure").
	MaxHeldPerClient int
	MaxHoldTime      time.Duration

	// Seed seeds the generator of the message ids the broker picks for a client at a new
	// address; a driver passes a random value so an off-path spoofer cannot guess the
	// id it would have to acknowledge to prove it owns the address. Tests fix it.
	Seed uint64

	// MaxAmplification bounds the octets sent to an address that has not yet proven it
	// receives (by acknowledging a message id only sent there) to this multiple of the
	// octets received from it (QUIC's rule; default 3). Negative disables the bound.
	MaxAmplification int

	// Access is optional access control (nil: everything allowed).
	Access *Access

	// Persist makes the engine journal durable state changes (see TakeJournal).
	Persist bool

	// OnEvent, if set, is called synchronously for connects, disconnects, takeovers,
	// wills and limits hit, so the driver can log them. It must not call back into the
	// Broker.
	OnEvent func(Event)

	// OnPublish, if set, is called synchronously for every message accepted for
	// publication (from clients, wills and Inject), with origin saying where it came
	// from. The slices are only valid during the call. A bridge uses it to forward
	// messages upstream; it must not block and must not call back into the Broker.
	OnPublish func(topic string, payload []byte, qos int8, retain bool, origin Origin)

	// Trace, if set, is called as a PUBLISH passes each stage inside the engine, so the
	// driver can stamp it with its clock: the core itself reads no clock.
	Trace func(Stage)
}

// QueueFullPolicy: what a full subscriber outbox does to a publisher (Config).
type QueueFullPolicy uint8

const (
	PolicyBlock QueueFullPolicy = iota // hold the publication and its acknowledgement until there is room
	PolicyDrop                         // acknowledge at once; drop (and count) the delivery to a full outbox
)

func (p QueueFullPolicy) String() string {
	switch p {
	case PolicyBlock:
		return "block"
	case PolicyDrop:
		return "drop"
	}
	return "unknown"
}

// Origin says where a publication came from.
type Origin uint8

const (
	OriginClient Origin = iota // an MQTT-SN client's PUBLISH
	OriginWill                 // a will published for a lost client
	OriginLocal                // Inject: the driver ($SYS) or a bridge
)

// Stage is a point on a PUBLISH's way through the engine.
type Stage uint8

const (
	StageDecoded Stage = iota // the datagram decoded as a PUBLISH
	StageMatched              // subscribers matched
	StageQueued               // the first delivery (or acknowledgement) encoded
)

// Defaults returns the configuration used for zero fields.
func Defaults() Config {
	return Config{
		GatewayID:          1,
		AdvertiseInterval:  15 * time.Minute,
		RetryInterval:      10 * time.Second,
		MaxRetries:         5,
		MaxClients:         10000,
		MaxTopics:          65000,
		MaxTopicsPerClient: 1000,
		MaxSubsPerClient:   1000,
		MaxQueuedPerClient: 1000,
		MaxSleepBuffer:     100,
		MaxQoS2Incoming:    100,
		MaxPayload:         packet.MaxLen - 7,
		MaxRetained:        10000,
		MaxClientIDLen:     packet.MaxClientIDLen,
		InflightWindow:     1,
		MaxTopicLength:     1024,
		MaxTopicLevels:     32,
		MaxAmplification:   3,
		MaxHeldPerClient:   32,
		MaxHoldTime:        30 * time.Second,

		MaxClientsPerAddress: 2000,
		MaxConnecting:        100,
		ConnectTimeout:       30 * time.Second,
		MaxKeepAlive:         time.Hour,
	}
}

// withDefaults fills zero fields from Defaults.
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.GatewayID == 0 {
		c.GatewayID = d.GatewayID
	}
	if c.AdvertiseInterval == 0 {
		c.AdvertiseInterval = d.AdvertiseInterval
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = d.RetryInterval
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.MaxClients, d.MaxClients)
	setInt(&c.MaxTopics, d.MaxTopics)
	setInt(&c.MaxTopicsPerClient, d.MaxTopicsPerClient)
	setInt(&c.MaxSubsPerClient, d.MaxSubsPerClient)
	setInt(&c.MaxQueuedPerClient, d.MaxQueuedPerClient)
	setInt(&c.MaxSleepBuffer, d.MaxSleepBuffer)
	setInt(&c.MaxQoS2Incoming, d.MaxQoS2Incoming)
	setInt(&c.MaxPayload, d.MaxPayload)
	setInt(&c.MaxRetained, d.MaxRetained)
	setInt(&c.MaxClientIDLen, d.MaxClientIDLen)
	setInt(&c.InflightWindow, d.InflightWindow)
	setInt(&c.MaxTopicLength, d.MaxTopicLength)
	setInt(&c.MaxTopicLevels, d.MaxTopicLevels)
	setInt(&c.MaxAmplification, d.MaxAmplification)
	setInt(&c.MaxHeldPerClient, d.MaxHeldPerClient)
	if c.MaxHoldTime == 0 {
		c.MaxHoldTime = d.MaxHoldTime
	}
	setInt(&c.MaxClientsPerAddress, d.MaxClientsPerAddress)
	setInt(&c.MaxConnecting, d.MaxConnecting)
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.MaxKeepAlive == 0 {
		c.MaxKeepAlive = d.MaxKeepAlive
	}
	return c
}

// Validate reports the first field out of range, naming it and its allowed range.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.AdvertiseInterval > 0 && c.AdvertiseInterval > 65535*time.Second:
		return fmt.Errorf("advertise interval %v exceeds the 16-bit Duration field (max 18h12m15s)", c.AdvertiseInterval)
	case c.RetryInterval < 0:
		return fmt.Errorf("retry interval %v must be positive", c.RetryInterval)
	case c.MaxRetries < 0:
		return fmt.Errorf("max retries %d must be positive", c.MaxRetries)
	case c.MaxTopics > 65534:
		return fmt.Errorf("max topics %d exceeds the 65534 usable topic ids", c.MaxTopics)
	case c.MaxClientIDLen > 65535:
		return fmt.Errorf("max client id length %d is too large", c.MaxClientIDLen)
	case c.MaxPayload > packet.MaxLen-7:
		return fmt.Errorf("max payload %d exceeds what one MQTT-SN PUBLISH can carry (%d)", c.MaxPayload, packet.MaxLen-7)
	case c.MaxTopicLength < 0 || c.MaxTopicLength > topic.MaxLen:
		return fmt.Errorf("max topic length %d must be 1..%d", c.MaxTopicLength, topic.MaxLen)
	case c.MaxTopicLevels < 0 || c.MaxTopicLevels > topic.MaxLen:
		return fmt.Errorf("max topic levels %d must be 1..%d", c.MaxTopicLevels, topic.MaxLen)
	case c.InflightWindow < 0 || c.InflightWindow > 1024:
		return fmt.Errorf("inflight window %d must be 1..1024", c.InflightWindow)
	case c.QueueFullPolicy > PolicyDrop:
		return fmt.Errorf("queue full policy %d must be PolicyBlock or PolicyDrop", c.QueueFullPolicy)
	case c.MaxHeldPerClient < 0:
		return fmt.Errorf("max held per client %d must be positive", c.MaxHeldPerClient)
	case c.MaxHoldTime < 0:
		return fmt.Errorf("max hold time %v must be positive", c.MaxHoldTime)
	case c.MaxClientsPerAddress < 0 || c.MaxConnecting < 0:
		return fmt.Errorf("max clients per address %d and max connecting %d must be positive", c.MaxClientsPerAddress, c.MaxConnecting)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("connect timeout %v must be positive", c.ConnectTimeout)
	case c.MaxKeepAlive < 0 || c.MaxKeepAlive > 65535*time.Second:
		return fmt.Errorf("max keep-alive %v must be 1s..18h12m15s (the 16-bit Duration field)", c.MaxKeepAlive)
	}
	if c.Access != nil {
		if err := c.Access.Validate(); err != nil {
			return err
		}
	}
	for id, name := range c.Predefined {
		if id == packet.TopicIDReserved0 || id == packet.TopicIDReservedMax {
			return fmt.Errorf("pre-defined topic id %d is reserved (0x0000 and 0xFFFF are)", id)
		}
		if err := topic.ValidateName(name); err != nil {
			return fmt.Errorf("pre-defined topic %d: %w", id, err)
		}
	}
	return nil
}
