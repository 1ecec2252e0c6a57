package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	store  *ackStore // paho's store, watched for acknowledgements

	mu      sync.Mutex
	queue   []outMsg // oldest first; bounded by cfg.Queue
	wake    chan struct{}
	up      chan struct{} // closed while connected; replaced on loss
	upState bool          // linkUp && resumed: Run may publish
	linkUp  bool          // connected (onConnect) since the last connection attempt
	resumed bool          // paho has taken its store snapshot since the last attempt

	forwarded, delivered, droppedQueue, droppedLocal, reconnects atomic.Uint64
	connects                                                     atomic.Uint64 // connections established
	lastDropLog                                                  atomic.Int64
	deliver                                                      deliverFn
}

type outMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// ackTimeout is how long a QoS 1/2 publish may wait on one connection for its
// acknowledgement before it is published again (it may then arrive twice). A reconnect
// starts the wait again: paho resends the stored message on the new connection.
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
	b.store = newAckStore(b.onSnapshot)
	opts := mqtt.NewClientOptions().
		SetStore(b.store).
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
		SetConnectionAttemptHandler(b.onAttempt).
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

// A connection is ready for the bridge's publications once paho has connected
// (onConnect) and has read its store to resend what the last connection left
// unacknowledged (onSnapshot). paho calls OnConnect in a goroutine alongside that
// resume: a message published before the snapshot would be taken up by resume too,
// resent, its token completed without an acknowledgement, and its packet written by
// two goroutines at once.

// onAttempt is called by paho, synchronously, before each connection attempt.
func (b *Bridge) onAttempt(_ *url.URL, tc *tls.Config) *tls.Config {
	b.mu.Lock()
	b.linkUp, b.resumed = false, false
	b.setUp()
	b.mu.Unlock()
	return tc
}

func (b *Bridge) onSnapshot() {
	b.mu.Lock()
	b.resumed = true
	b.setUp()
	b.mu.Unlock()
}

func (b *Bridge) onConnect(c mqtt.Client) {
	b.connects.Add(1)
	b.log.Info("bridge connected upstream", "client_id", b.cfg.ClientID)
	for _, r := range b.cfg.In {
		r := r
		c.Subscribe(r.Filter, r.QoS, func(_ mqtt.Client, m mqtt.Message) { b.fromUpstream(r, m) })
	}
	b.mu.Lock()
	b.linkUp = true
	b.setUp()
	b.mu.Unlock()
}

func (b *Bridge) onLost(c mqtt.Client, err error) {
	b.log.Warn("bridge lost the upstream connection; reconnecting", "err", err)
	b.mu.Lock()
	// paho calls this in a goroutine that may run after the next connection is up.
	if !c.IsConnectionOpen() {
		b.linkUp = false
		b.setUp()
	}
	b.mu.Unlock()
}

// setUp brings upState (and the up channel) in line; b.mu held.
func (b *Bridge) setUp() {
	up := b.linkUp && b.resumed
	switch {
	case up && !b.upState:
		b.upState = true
		close(b.up)
	case !up && b.upState:
		b.upState = false
		b.up = make(chan struct{})
	}
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
		var up chan struct{} // closed while connected: wait on it only while away
		if !b.upState {
			up = b.up
		}
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
		ok, stop := b.publish(ctx, m)
		if stop {
			return nil
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

// publish hands m to paho and reports whether the upstream acknowledged it (for QoS 0:
// whether it was written); stop is set when ctx ended first.
func (b *Bridge) publish(ctx context.Context, m *outMsg) (ok, stop bool) {
	if m.qos == 0 {
		tok := b.client.Publish(m.topic, m.qos, m.retain, m.payload)
		select {
		case <-ctx.Done():
			return false, true
		case <-tok.Done():
			return tok.Error() == nil, false
		case <-time.After(ackTimeout):
			return false, false
		}
	}
	// QoS 1/2: only the acknowledgement counts, seen as paho deleting the message from
	// its store (see ackStore); the token may complete without one after a reconnect.
	p := b.store.expect()
	defer b.store.forget(p)
	conn := b.connects.Load()
	tok := b.client.Publish(m.topic, m.qos, m.retain, m.payload)
	tokDone := tok.Done()
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, true
		case <-p.acked:
			return true, false
		case <-p.lost:
			return false, false
		case <-tokDone:
			if tok.Error() != nil {
				// Not sent, or not through (the connection went): publish again.
				select {
				case <-p.acked:
					return true, false
				default:
					return false, false
				}
			}
			tokDone = nil // completed without error: wait for the acknowledgement itself
		case <-timer.C:
			b.mu.Lock()
			upState := b.upState
			b.mu.Unlock()
			if now := b.connects.Load(); now != conn || !upState {
				// Reconnected since, or away now: paho resends the stored message on
				// the new connection; give that one its time.
				conn = now
				timer.Reset(ackTimeout)
				continue
			}
			// One connection, no acknowledgement for ackTimeout: publish it again.
			return false, false
		}
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
