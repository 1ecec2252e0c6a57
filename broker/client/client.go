// Package client is an MQTT-SN v1.2 client over UDP: connect (with a will), register,
// publish at QoS -1 to 2, subscribe and unsubscribe, receive with exactly-once QoS 2,
// keep-alive, sleep and wake. The musqratt pub and sub commands are built on it, and
// tests use it to drive the real binary; it talks to any MQTT-SN gateway, not only
// MusQraTT.
//
// A Client runs one reader goroutine that answers the gateway (PUBACK, PUBREC/PUBCOMP,
// REGACK) and hands the replies it waits for to the caller. Requests are sent one at a
// time, as the spec asks of a client (6.1 "a client has only one outstanding request"),
// and retransmitted with DUP after RetryInterval, up to Retries times.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// Defaults for Config's zero values.
const (
	DefaultKeepAlive     = 60 * time.Second
	DefaultRetryInterval = 2 * time.Second // T_RETRY: a LAN gateway answers in milliseconds
	DefaultRetries       = 3               // N_RETRY
)

// Config says how a client connects.
type Config struct {
	// ClientID is the CONNECT ClientId (1-23 octets).
	ClientID string
	// KeepAlive is the CONNECT Duration; the client sends PINGREQ when it has been
	// silent this long. Zero means DefaultKeepAlive; rounded to whole seconds.
	KeepAlive time.Duration
	// Persistent asks for a persistent session (CleanSession 0): subscriptions and
	// QoS 1/2 messages survive a disconnect.
	Persistent bool
	// Will, when set, is exchanged at connect (WILLTOPICREQ/WILLMSGREQ).
	Will *Will
	// RetryInterval and Retries are T_RETRY and N_RETRY for every request.
	RetryInterval time.Duration
	Retries       int
	// OnMessage receives every PUBLISH from the gateway, on the reader goroutine: it
	// must not block for long. A QoS 2 message is delivered once even if the gateway
	// sends it again. Message.Payload is the caller's to keep.
	OnMessage func(Message)
	// OnLost is called once if the connection is lost: the gateway stops answering
	// PINGREQ, sends DISCONNECT unasked, or the socket fails.
	OnLost func(error)
	// OnPacket, when set, sees every packet: each one the client sends (sent=true,
	// retransmissions included, just before it is written) and each one it receives
	// and decodes (before it is handled), once each — the trace of `musqratt pub -d`
	// (Describe formats it). It runs on the sending or the reader goroutine, the
	// former under the client's lock: it must not block or call the Client, and p
	// (which may alias a buffer) is valid only during the call.
	OnPacket func(sent bool, p *packet.Packet)
}

// Will is the last-will message the gateway publishes if this client is lost.
type Will struct {
	Topic   string
	Payload []byte
	QoS     packet.QoS // 0, 1 or 2
	Retain  bool
}

// Message is a PUBLISH received from the gateway.
type Message struct {
	// Topic is the topic name when the client knows it: from REGISTER, from the
	// SUBACK of a subscription by name, or the two octets of a short name. For a
	// pre-defined id it is empty (the gateway and client agree on ids out of band).
	Topic     string
	TopicID   uint16
	TopicType packet.TopicIDType
	Payload   []byte
	QoS       packet.QoS
	Retain    bool
	Dup       bool
}

// Errors a caller can test for with errors.Is.
var (
	ErrTimeout = errors.New("mqttsn: no answer from the gateway")
	ErrClosed  = errors.New("mqttsn: client closed")
	ErrLost    = errors.New("mqttsn: connection lost")
)

// RejectedError is a gateway's refusal (a ReturnCode other than accepted).
type RejectedError struct {
	Op   string // "connect", "register", "publish", "subscribe", "will update"
	Code packet.ReturnCode
}

func (e *RejectedError) Error() string { return fmt.Sprintf("mqttsn: %s %v", e.Op, e.Code) }

// Client is one connected MQTT-SN client. Its methods may be called from any goroutine;
// requests are serialised.
type Client struct {
	cfg  Config
	conn net.Conn

	reqMu sync.Mutex // one outstanding request at a time

	mu        sync.Mutex
	out       []byte
	waiter    *waiter
	nextMsgID uint16
	names     map[uint16]string // topic id -> name (normal ids)
	ids       map[string]uint16 // name -> topic id
	qos2In    map[uint16]uint64 // QoS 2 msg ids delivered, awaiting PUBREL -> fingerprint
	released  map[uint16]released
	lastSend  time.Time
	asleep    bool
	closed    bool
	lostErr   error

	done     chan struct{}
	readDone chan struct{}
}

// released is a QoS 2 message this client has completed (PUBREL answered). A copy of
// its PUBLISH that the network duplicated and delayed can arrive after that; it must
// not be delivered again. A fingerprint and a time window tell such a stray copy from
// a new message that reuses the id.
type released struct {
	at  time.Time
	sum uint64
}

// strayWindow is how long a completed QoS 2 id is remembered: longer than any
// datagram lingers in the network.
const strayWindow = 30 * time.Second

// waiter is the one request awaiting its answer.
type waiter struct {
	want  packet.Type
	msgID uint16 // 0: any
	ch    chan reply
	learn string // SUBSCRIBE by name: the name the SUBACK's topic id stands for
}

// reply is what a waiter needs of its answer (the Packet's slices alias the read buffer).
type reply struct {
	typ     packet.Type
	code    packet.ReturnCode
	topicID uint16
	flags   packet.Flags
}

// Dial connects to the gateway at addr ("host:port") and completes CONNECT, with the
// will exchange when cfg.Will is set.
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return DialConn(ctx, conn, addr, cfg)
}

// DialConn is Dial over conn, a datagram link to the gateway already open (a UDP
// socket, or a serial line adapted to net.Conn: one MQTT-SN message per Read and
// Write), named addr in errors. It closes conn if the CONNECT fails.
func DialConn(ctx context.Context, conn net.Conn, addr string, cfg Config) (*Client, error) {
	c, err := New(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, &NoBrokerError{Addr: addr, Reason: "connection refused", Err: err}
		case errors.Is(err, ErrTimeout):
			return nil, &NoBrokerError{Addr: addr, Reason: fmt.Sprintf("no CONNACK after %d tries %v apart", c.cfg.Retries+1, c.cfg.RetryInterval), Err: err}
		}
		return nil, err
	}
	return c, nil
}

// NoBrokerError is Dial's error when nothing answered the CONNECT: no process on the
// port (the host said so: connection refused) or no answer within the retries.
type NoBrokerError struct {
	Addr   string
	Reason string // "connection refused", or the retries that went unanswered
	Err    error
}

func (e *NoBrokerError) Error() string {
	return fmt.Sprintf("no MQTT-SN broker answered at %s (%s)", e.Addr, e.Reason)
}

func (e *NoBrokerError) Unwrap() error { return e.Err }

// New wraps conn (connected to the gateway; each Read and Write one MQTT-SN message)
// without connecting: for QoS -1 publishes, or to call Connect later.
func New(conn net.Conn, cfg Config) (*Client, error) {
	if len(cfg.ClientID) > packet.MaxClientIDLen {
		return nil, fmt.Errorf("mqttsn: client id %q is %d octets; MQTT-SN allows 1-%d", cfg.ClientID, len(cfg.ClientID), packet.MaxClientIDLen)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.KeepAlive > 65535*time.Second {
		return nil, fmt.Errorf("mqttsn: keep-alive %v exceeds 65535 s", cfg.KeepAlive)
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultRetries
	}
	if w := cfg.Will; w != nil && (w.QoS < 0 || w.QoS > 2) {
		return nil, fmt.Errorf("mqttsn: will QoS %d; a will is QoS 0, 1 or 2", w.QoS)
	}
	c := &Client{
		cfg: cfg, conn: conn,
		names: map[uint16]string{}, ids: map[string]uint16{}, qos2In: map[uint16]uint64{}, released: map[uint16]released{},
		done: make(chan struct{}), readDone: make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// LocalAddr is the client's own address.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Connect sends CONNECT and completes the will exchange.
func (c *Client) Connect(ctx context.Context) error {
	if c.cfg.ClientID == "" {
		return fmt.Errorf("mqttsn: connect needs a client id")
	}
	flags := packet.Flags(0)
	if !c.cfg.Persistent {
		flags |= packet.FlagCleanSession
	}
	if c.cfg.Will != nil {
		flags |= packet.FlagWill
	}
	p := packet.Packet{Type: packet.CONNECT, Flags: flags, ProtocolID: packet.ProtocolID,
		Duration: uint16(c.cfg.KeepAlive / time.Second), ClientID: []byte(c.cfg.ClientID)}
	r, err := c.request(ctx, &p, packet.CONNACK, 0)
	if err != nil {
		return fmt.Errorf("mqttsn: connect: %w", err)
	}
	if r.code != packet.Accepted {
		return &RejectedError{Op: "connect", Code: r.code}
	}
	c.mu.Lock()
	c.asleep = false
	c.mu.Unlock()
	go c.keepAlive()
	return nil
}

// request sends p and waits for the answer of type want (and msgID when nonzero),
// resending p (with DUP where the type has it) every RetryInterval.
func (c *Client) request(ctx context.Context, p *packet.Packet, want packet.Type, msgID uint16) (reply, error) {
	return c.do(ctx, p, &waiter{want: want, msgID: msgID})
}

// do is request with the waiter given.
func (c *Client) do(ctx context.Context, p *packet.Packet, w *waiter) (reply, error) {
	want := w.want
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	w.ch = make(chan reply, 4)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return reply{}, ErrClosed
	}
	c.waiter = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.waiter == w {
			c.waiter = nil
		}
		c.mu.Unlock()
	}()
	timer := time.NewTimer(c.cfg.RetryInterval)
	defer timer.Stop()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			switch p.Type {
			case packet.PUBLISH, packet.SUBSCRIBE, packet.UNSUBSCRIBE:
				p.Flags |= packet.FlagDUP
			}
		}
		if err := c.send(p); err != nil {
			return reply{}, err
		}
		timer.Reset(c.cfg.RetryInterval)
		select {
		case r := <-w.ch:
			return r, nil
		case <-timer.C:
			if attempt >= c.cfg.Retries {
				return reply{}, fmt.Errorf("%w: no %v after %d tries %v apart", ErrTimeout, want, attempt+1, c.cfg.RetryInterval)
			}
		case <-ctx.Done():
			return reply{}, ctx.Err()
		case <-c.done:
			return reply{}, c.closedErr()
		}
	}
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lostErr != nil {
		return c.lostErr
	}
	return ErrClosed
}

// send encodes and writes p.
func (c *Client) send(p *packet.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(p)
}

func (c *Client) sendLocked(p *packet.Packet) error {
	c.out = packet.Append(c.out[:0], p)
	if len(c.out) == 0 {
		return fmt.Errorf("mqttsn: cannot encode %v", p.Type)
	}
	c.lastSend = time.Now()
	if c.cfg.OnPacket != nil {
		// Before the write, so that the answer's line cannot come first.
		c.cfg.OnPacket(true, p)
	}
	_, err := c.conn.Write(c.out)
	return err
}

// msgID returns the next message id (never 0, which the spec reserves for QoS -1/0).
func (c *Client) msgID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextMsgID++
	if c.nextMsgID == 0 {
		c.nextMsgID = 1
	}
	return c.nextMsgID
}

// read is the reader goroutine: it answers the gateway and wakes the waiting request.
func (c *Client) read() {
	defer close(c.readDone)
	buf := make([]byte, 65536)
	var p packet.Packet
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			select {
			case <-c.done:
			default:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				c.lose(fmt.Errorf("%w: %w", ErrLost, err))
			}
			return
		}
		if packet.Decode(buf[:n], &p) != nil {
			continue // not ours to judge: a gateway bug or stray datagram
		}
		if c.cfg.OnPacket != nil {
			c.cfg.OnPacket(false, &p)
		}
		c.handle(&p)
	}
}

func (c *Client) handle(p *packet.Packet) {
	switch p.Type {
	case packet.PUBLISH:
		c.receivePublish(p)
		return
	case packet.PUBREL:
		c.mu.Lock()
		if sum, ok := c.qos2In[p.MsgID]; ok {
			now := time.Now()
			for id, r := range c.released {
				if now.Sub(r.at) > strayWindow {
					delete(c.released, id)
				}
			}
			c.released[p.MsgID] = released{at: now, sum: sum}
		}
		delete(c.qos2In, p.MsgID)
		_ = c.sendLocked(&packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
		c.mu.Unlock()
		return
	case packet.REGISTER:
		c.mu.Lock()
		name := string(p.TopicName)
		c.names[p.TopicID] = name
		c.ids[name] = p.TopicID
		_ = c.sendLocked(&packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted})
		c.mu.Unlock()
		return
	case packet.PINGREQ:
		_ = c.send(&packet.Packet{Type: packet.PINGRESP})
		return
	case packet.WILLTOPICREQ:
		c.mu.Lock()
		w := c.cfg.Will
		if w != nil {
			_ = c.sendLocked(&packet.Packet{Type: packet.WILLTOPIC,
				Flags: packet.Flags(0).WithQoS(w.QoS) | retainFlag(w.Retain), WillTopic: []byte(w.Topic)})
		}
		c.mu.Unlock()
		return
	case packet.WILLMSGREQ:
		c.mu.Lock()
		if w := c.cfg.Will; w != nil {
			_ = c.sendLocked(&packet.Packet{Type: packet.WILLMSG, WillMsg: w.Payload})
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	w := c.waiter
	// A refused QoS 2 PUBLISH is answered by PUBACK with the return code (6.12).
	matches := w != nil && (w.want == p.Type || w.want == packet.PUBREC && p.Type == packet.PUBACK)
	if matches && (w.msgID == 0 || w.msgID == p.MsgID) {
		c.waiter = nil
		if w.learn != "" && p.ReturnCode == packet.Accepted && p.TopicID != 0 {
			c.names[p.TopicID], c.ids[w.learn] = w.learn, p.TopicID
		}
		c.mu.Unlock()
		w.ch <- reply{typ: p.Type, code: p.ReturnCode, topicID: p.TopicID, flags: p.Flags}
		return
	}
	c.mu.Unlock()
	switch p.Type {
	case packet.DISCONNECT:
		// Unasked: the gateway dropped us (e.g. keep-alive expired, taken over).
		c.lose(fmt.Errorf("%w: the gateway sent DISCONNECT", ErrLost))
	case packet.PUBACK:
		if p.ReturnCode == packet.InvalidTopicID {
			// The answer to a QoS 0 publish on an id the gateway does not know (6.5):
			// forget the id so the next publish registers again.
			c.mu.Lock()
			if name, ok := c.names[p.TopicID]; ok {
				delete(c.ids, name)
				delete(c.names, p.TopicID)
			}
			c.mu.Unlock()
		}
	}
}

func retainFlag(r bool) packet.Flags {
	if r {
		return packet.FlagRetain
	}
	return 0
}

func (c *Client) receivePublish(p *packet.Packet) {
	q := p.Flags.QoS()
	c.mu.Lock()
	if q == packet.QoS2 {
		sum := fingerprint(p)
		_, dup := c.qos2In[p.MsgID]
		if r, ok := c.released[p.MsgID]; ok && !dup && r.sum == sum && time.Since(r.at) < strayWindow {
			// A stray copy of a message already completed: answer as the gateway
			// expects, deliver nothing. (A gateway resending it for real would have
			// had no PUBREL from us, so it would still be in qos2In.)
			_ = c.sendLocked(&packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
			c.mu.Unlock()
			return
		}
		c.qos2In[p.MsgID] = sum
		_ = c.sendLocked(&packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
		if dup {
			c.mu.Unlock()
			return // delivered already; the gateway missed our PUBREC
		}
	}
	m := Message{TopicID: p.TopicID, TopicType: p.Flags.TopicIDType(), QoS: q,
		Retain: p.Flags.Retain(), Dup: p.Flags.DUP(), Payload: append([]byte(nil), p.Data...)}
	switch m.TopicType {
	case packet.TopicNormal:
		m.Topic = c.names[p.TopicID]
	case packet.TopicShort:
		m.Topic = string([]byte{byte(p.TopicID >> 8), byte(p.TopicID)})
	}
	c.mu.Unlock()
	if h := c.cfg.OnMessage; h != nil {
		h(m)
	}
	if q == packet.QoS1 {
		// Acknowledged after the handler has the message: a crash in between means
		// the gateway sends it again, never that it is lost.
		_ = c.send(&packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted})
	}
}

// fingerprint hashes a PUBLISH's topic and payload (FNV-1a).
func fingerprint(p *packet.Packet) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range [...]byte{byte(p.Flags.TopicIDType()), byte(p.TopicID >> 8), byte(p.TopicID)} {
		h = (h ^ uint64(b)) * 1099511628211
	}
	for _, b := range p.Data {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return h
}

// keepAlive sends PINGREQ whenever the client has been silent for the keep-alive
// period; a PINGREQ unanswered after the retries means the connection is lost.
func (c *Client) keepAlive() {
	period := c.cfg.KeepAlive
	t := time.NewTicker(period / 4)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		idle, asleep := time.Since(c.lastSend), c.asleep
		c.mu.Unlock()
		if asleep {
			return // Sleep's caller wakes the client; Connect restarts this loop
		}
		if idle < period*3/4 {
			continue
		}
		if err := c.Ping(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			c.lose(fmt.Errorf("%w: PINGREQ unanswered: %v", ErrLost, err))
			return
		}
	}
}

// Ping sends PINGREQ and waits for PINGRESP.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.request(ctx, &packet.Packet{Type: packet.PINGREQ}, packet.PINGRESP, 0)
	return err
}

// lose marks the connection lost and tells OnLost once.
func (c *Client) lose(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.lostErr = err
	close(c.done)
	c.mu.Unlock()
	if c.cfg.OnLost != nil {
		c.cfg.OnLost(err)
	}
}

// Done is closed when the client is closed or its connection lost; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why Done closed: nil after Close, else the loss.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lostErr
}

// Close closes the socket without DISCONNECT (the gateway then keeps the session
// and, at keep-alive expiry, publishes the will). Use Disconnect for a clean end.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.readDone
	return err
}

// Disconnect sends DISCONNECT, waits for the gateway's DISCONNECT, and closes.
func (c *Client) Disconnect(ctx context.Context) error {
	_, err := c.request(ctx, &packet.Packet{Type: packet.DISCONNECT}, packet.DISCONNECT, 0)
	cerr := c.Close()
	if err != nil {
		return fmt.Errorf("mqttsn: disconnect: %w", err)
	}
	return cerr
}

// Sleep sends DISCONNECT with a sleep duration: the gateway buffers messages for this
// client until it wakes (Wake) or the duration passes without a PINGREQ.
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	secs := d / time.Second
	if secs < 1 || secs > 65535 {
		return fmt.Errorf("mqttsn: sleep duration %v: must be 1 s to 65535 s", d)
	}
	_, err := c.request(ctx, &packet.Packet{Type: packet.DISCONNECT, Duration: uint16(secs), HasDuration: true}, packet.DISCONNECT, 0)
	if err != nil {
		return fmt.Errorf("mqttsn: sleep: %w", err)
	}
	c.mu.Lock()
	c.asleep = true
	c.mu.Unlock()
	return nil
}

// Wake is an awake period of a sleeping client: PINGREQ with the client id makes the
// gateway send the buffered messages (to OnMessage) and then PINGRESP, after which the
// client is asleep again (6.14).
func (c *Client) Wake(ctx context.Context) error {
	_, err := c.request(ctx, &packet.Packet{Type: packet.PINGREQ, ClientID: []byte(c.cfg.ClientID)}, packet.PINGRESP, 0)
	if err != nil {
		return fmt.Errorf("mqttsn: wake: %w", err)
	}
	return nil
}

// UpdateWill changes the will topic (empty: delete the will) and message while connected.
func (c *Client) UpdateWill(ctx context.Context, w *Will) error {
	tp := packet.Packet{Type: packet.WILLTOPICUPD}
	if w != nil && w.Topic != "" {
		tp.Flags = packet.Flags(0).WithQoS(w.QoS) | retainFlag(w.Retain)
		tp.WillTopic = []byte(w.Topic)
	}
	r, err := c.request(ctx, &tp, packet.WILLTOPICRESP, 0)
	if err != nil {
		return fmt.Errorf("mqttsn: will topic update: %w", err)
	}
	if r.code != packet.Accepted {
		return &RejectedError{Op: "will update", Code: r.code}
	}
	if w == nil || w.Topic == "" {
		return nil
	}
	r, err = c.request(ctx, &packet.Packet{Type: packet.WILLMSGUPD, WillMsg: w.Payload}, packet.WILLMSGRESP, 0)
	if err != nil {
		return fmt.Errorf("mqttsn: will message update: %w", err)
	}
	if r.code != packet.Accepted {
		return &RejectedError{Op: "will update", Code: r.code}
	}
	return nil
}
