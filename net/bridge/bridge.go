package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/musqratt/musqratt/broker/topic"
)

// Bridge is one upstream MQTT connection. It implements kernel.Upstream.
type Bridge struct {
	cfg    Config
	log    *slog.Logger
	client mqtt.Client

	mu      sync.Mutex
	queue   []outMsg // oldest first; bounded by cfg.Queue
	wake    chan struct{}
	up      chan struct{} // closed while connected; replaced on loss
	upState bool

	forwarded, delivered, droppedQueue, droppedLocal, reconnects atomic.Uint64
	lastDropLog                                                  atomic.Int64
	deliver                                                      deliverFn
}

type outMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// ackTimeout is how long a publish may wait for its acknowledgement before it is sent
// again (a QoS 1/2 message may then arrive twice).
const ackTimeout = 5 * time.Second

// Stats are the bridge's counters.
type Stats struct {
	Connected      bool
	Queued         int    // messages waiting for upstream
	Forwarded      uint64 // published upstream (acknowledged, for QoS 1/2)
	Delivered      uint64 // from upstream, handed to the local engine
	DroppedQueue   uint64 // local publications dropped: the queue was full
	DroppedLocal   uint64 // upstream messages dropped: the engine's queue stayed full
	Reconnects     uint64
	UpstreamClient string
}

// New checks cfg and returns a bridge ready to Run.
func New(cfg Config, logger *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("bridge: no address configured")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.ClientID == "" {
		host, _ := os.Hostname()
		cfg.ClientID = "musqratt-" + host
	}
	b := &Bridge{cfg: cfg, log: logger.With("bridge", cfg.Address), wake: make(chan struct{}, 1), up: make(chan struct{})}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Address).
		SetClientID(cfg.ClientID).
		SetCleanSession(cfg.CleanSession).
		SetKeepAlive(cfg.KeepAlive).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(cfg.RetryMin).
		SetMaxReconnectInterval(cfg.RetryMax).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(false). // the handler only queues: never blocks paho's router
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(b.onLost).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { b.reconnects.Add(1) })
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username)
		opts.SetPassword(cfg.Password)
	}
	if strings.HasPrefix(cfg.Address, "ssl://") || strings.HasPrefix(cfg.Address, "tls://") ||
		strings.HasPrefix(cfg.Address, "mqtts://") || strings.HasPrefix(cfg.Address, "wss://") {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	b.client = mqtt.NewClient(opts)
	return b, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{InsecureSkipVerify: cfg.TLSInsecure, MinVersion: tls.VersionTLS12}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("bridge tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bridge tls_ca %s: no PEM certificate in it", cfg.TLSCA)
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("bridge tls_cert/tls_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Forward is called on the engine goroutine for each local publication: it queues
// the message for upstream if an out rule matches, and never blocks.
func (b *Bridge) Forward(name string, payload []byte, qos int8, retain bool) {
	for _, r := range b.cfg.Out {
		if !topic.Match(r.Filter, name) {
			continue
		}
		q := byte(max(qos, 0))
		q = min(q, r.QoS)
		m := outMsg{topic: r.Prefix + name, payload: append([]byte(nil), payload...), qos: q, retain: retain}
		b.mu.Lock()
		if len(b.queue) >= b.cfg.Queue {
			b.mu.Unlock()
			b.droppedQueue.Add(1)
			b.rateLog("upstream queue full: local publication not forwarded", "topic", name, "queue", b.cfg.Queue)
			return
		}
		b.queue = append(b.queue, m)
		b.mu.Unlock()
		select {
		case b.wake <- struct{}{}:
		default:
		}
		return // first matching rule wins
	}
}

// rateLog logs at most one warning per second for drops.
func (b *Bridge) rateLog(msg string, args ...any) {
	now := time.Now().UnixNano()
	if last := b.lastDropLog.Load(); now-last > int64(time.Second) && b.lastDropLog.CompareAndSwap(last, now) {
		b.log.Warn(msg, args...)
	}
}

func (b *Bridge) onConnect(c mqtt.Client) {
	b.log.Info("bridge connected upstream", "client_id", b.cfg.ClientID)
	for _, r := range b.cfg.In {
		r := r
		c.Subscribe(r.Filter, r.QoS, func(_ mqtt.Client, m mqtt.Message) { b.fromUpstream(r, m) })
	}
	b.mu.Lock()
	if !b.upState {
		b.upState = true
		close(b.up)
	}
	b.mu.Unlock()
}

func (b *Bridge) onLost(_ mqtt.Client, err error) {
	b.log.Warn("bridge lost the upstream connection; reconnecting", "err", err)
	b.mu.Lock()
	if b.upState {
		b.upState = false
		b.up = make(chan struct{})
	}
	b.mu.Unlock()
}

// deliverFn is set by Run: the kernel's queue into the engine.
type deliverFn = func(topic string, payload []byte, qos int8, retain bool) bool

func (b *Bridge) fromUpstream(r InRule, m mqtt.Message) {
	name := strings.TrimPrefix(m.Topic(), r.Strip)
	b.mu.Lock()
	deliver := b.deliver
	b.mu.Unlock()
	if deliver == nil {
		return
	}
	// The engine's queue is bounded; when it is full, give it a moment before
	// counting the message dropped (paho has already acknowledged it upstream).
	for try := 0; ; try++ {
		if deliver(name, m.Payload(), int8(m.Qos()), m.Retained()) {
			b.delivered.Add(1)
			return
		}
		if try == 50 {
			b.droppedLocal.Add(1)
			b.rateLog("local queue full: message from upstream dropped", "topic", name)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Run connects upstream and keeps the bridge going until ctx ends.
func (b *Bridge) Run(ctx context.Context, deliver deliverFn) error {
	b.mu.Lock()
	b.deliver = deliver
	b.mu.Unlock()
	b.client.Connect() // with ConnectRetry, it keeps trying in the background
	defer b.client.Disconnect(250)
	for {
		b.mu.Lock()
		up := b.up
		var m *outMsg
		if b.upState && len(b.queue) > 0 {
			m = &b.queue[0]
		}
		b.mu.Unlock()
		if m == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-b.wake:
			case <-up:
			}
			continue
		}
		tok := b.client.Publish(m.topic, m.qos, m.retain, m.payload)
		ok := false
		select {
		case <-ctx.Done():
			return nil
		case <-tok.Done():
			ok = tok.Error() == nil
		case <-time.After(ackTimeout):
			// paho can leave the token of a message written as the connection
			// dropped pending for ever; publish it again rather than wait.
		}
		if os.Getenv("PAHO_DEBUG") != "" {
			b.log.Info("DBG publish result", "payload", string(m.payload), "id", tok.(*mqtt.PublishToken).MessageID(), "ok", ok, "err", tok.Error())
		}
		if !ok {
			// Not acknowledged (the connection went): keep it at the head and resend
			// once reconnected. A QoS 1 message may then arrive twice, never not.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(b.cfg.RetryMin / 4):
			}
			continue
		}
		b.mu.Lock()
		b.queue[0] = outMsg{}
		b.queue = b.queue[1:]
		if len(b.queue) == 0 {
			b.queue = b.queue[:0:0] // let a drained burst's array go
		}
		b.mu.Unlock()
		b.forwarded.Add(1)
	}
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Connected: b.upState, Queued: len(b.queue), Forwarded: b.forwarded.Load(), Delivered: b.delivered.Load(),
		DroppedQueue: b.droppedQueue.Load(), DroppedLocal: b.droppedLocal.Load(), Reconnects: b.reconnects.Load(),
		UpstreamClient: b.cfg.ClientID}
}
