package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// Engine is what the loop drives; *broker.Broker implements it. Tests may drive a fake.
type Engine interface {
	Receive(now time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram
	Tick(now time.Time, out []broker.Datagram) []broker.Datagram
	Deadline() time.Time
}

// DefaultMaxDatagram is the largest datagram read: the largest MQTT-SN message (its
// 3-octet length form counts up to 65535 octets).
const DefaultMaxDatagram = 65535

// Options configure a Server. The zero value works: no broadcast, the monotonic clock,
// logging to slog.Default().
type Options struct {
	// Broadcast lists where broadcast datagrams (ADVERTISE) are sent, for example
	// 255.255.255.255:1883 and [ff02::1]:1883. Each is sent on every connection whose
	// address family reaches it. Empty: broadcast datagrams are dropped.
	Broadcast []netip.AddrPort

	// MaxDatagram is the largest datagram accepted (0: DefaultMaxDatagram). Longer
	// ones are counted as Oversized and dropped.
	MaxDatagram int

	// Clock stamps each received datagram (its Mark) and each sent one. Nil: the
	// monotonic clock in nanoseconds. With several connections it is read from each
	// connection's reader goroutine, so it must be safe for concurrent use.
	Clock Clock

	// Observe, if set, is called on the engine goroutine after each datagram is sent
	// that an input caused (Mark != 0), with that input's stamp and the clock after
	// the write: sent-mark is the datagram's residence time in ticks of Clock.
	Observe func(mark, sent uint64)

	// Logger receives rate-limited lines about read and write errors and oversized
	// datagrams. Nil: slog.Default().
	Logger *slog.Logger

	// LogWindow is the rate-limit window for those lines (0: DefaultLogWindow).
	LogWindow time.Duration

	// Commit, if set, is called on the engine goroutine after every Receive and Tick,
	// before the datagrams that call produced are written: it makes durable what they
	// promise (the engine's journal records). If it fails, the call's datagrams are
	// dropped and counted (CommitErrors): an acknowledgement never leaves ahead of the
	// state it acknowledges, and a client's retransmission tries again.
	Commit func(now time.Time) error
	// CommitDeadline, if set, says when Commit must run even if nothing arrives (an
	// interval sync); the zero Time means no such need. Commit then runs after a Tick.
	CommitDeadline func() time.Time

	// BusyPoll, if positive, keeps the engine goroutine polling its socket without
	// blocking for this long after each datagram, instead of sleeping in the kernel
	// until the next one. A datagram that arrives within the window is picked up
	// without a thread wake-up — on a virtual machine the wake-up of an idle vCPU is
	// most of a hop's latency — at the price of a busy core while traffic keeps
	// coming. Only a single *net.UDPConn on Linux polls, and only with GOMAXPROCS of 2
	// or more (with one P, the spinning loop would keep the runtime from noticing the
	// process's other network events until sysmon's 10 ms poll); elsewhere this is
	// ignored.
	BusyPoll time.Duration
}

// Stats counts what the driver did. Engine-level counts are in broker.Stats.
type Stats struct {
	Received     uint64 // datagrams handed to the engine
	Sent         uint64 // datagrams written (a broadcast counts once per destination)
	Broadcasts   uint64 // broadcast datagrams written, per destination
	Oversized    uint64 // datagrams longer than MaxDatagram, dropped
	ReadErrors   uint64 // failed reads (other than timeouts and shutdown), and datagrams without a usable source address
	WriteErrors  uint64 // failed writes, never fatal
	CommitErrors uint64 // failed Commits; the datagrams of those calls were not sent
	Ticks        uint64 // calls to Engine.Tick
}

// Server runs the engine over one or more connections. Create it with New.
type Server struct {
	eng            Engine
	conns          []*conn
	bcast          []netip.AddrPort
	max            int
	clock          Clock
	observe        func(mark, sent uint64)
	commit         func(now time.Time) error
	commitDeadline func() time.Time
	log            *slog.Logger
	rl             *rateLimiter
	running        atomic.Bool
	busyPoll       time.Duration

	// wake carries Wake's request to the engine goroutine (capacity 1: requests merge).
	wake chan struct{}

	// Engine goroutine state.
	out   []broker.Datagram
	route map[netip.AddrPort]*conn // multi-connection: which connection a peer was last heard on

	received, sent, broadcasts, oversized, readErrors, writeErrors, commitErrors, ticks atomic.Uint64
}

// New returns a server driving eng over conns (at least one). The caller keeps
// ownership of the connections: Run does not close them.
func New(eng Engine, opts Options, conns ...net.PacketConn) *Server {
	s := &Server{
		eng:            eng,
		bcast:          opts.Broadcast,
		max:            opts.MaxDatagram,
		clock:          opts.Clock,
		observe:        opts.Observe,
		commit:         opts.Commit,
		commitDeadline: opts.CommitDeadline,
		log:            opts.Logger,
		rl:             newRateLimiter(opts.LogWindow),
		out:            make([]broker.Datagram, 0, 64),
		wake:           make(chan struct{}, 1),
		busyPoll:       opts.BusyPoll,
	}
	if s.max <= 0 {
		s.max = DefaultMaxDatagram
	}
	if s.clock == nil {
		s.clock = newMonoClock()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, pc := range conns {
		s.conns = append(s.conns, newConn(pc))
	}
	if s.busyPoll > 0 && len(s.conns) == 1 && runtime.GOMAXPROCS(0) >= 2 {
		s.conns[0].initPoll()
	}
	if len(s.conns) > 1 {
		s.route = make(map[netip.AddrPort]*conn)
	}
	return s
}

// Stats returns the driver's counters. It is safe to call from any goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		Received:     s.received.Load(),
		Sent:         s.sent.Load(),
		Broadcasts:   s.broadcasts.Load(),
		Oversized:    s.oversized.Load(),
		ReadErrors:   s.readErrors.Load(),
		WriteErrors:  s.writeErrors.Load(),
		CommitErrors: s.commitErrors.Load(),
		Ticks:        s.ticks.Load(),
	}
}

// aLongTimeAgo is a read deadline in the past: it interrupts a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// Wake makes the engine goroutine call Engine.Tick soon, even with no traffic and no
// timer due: how another goroutine (a bridge with messages from upstream) gets work
// onto the engine, which only its own goroutine may touch. Safe from any goroutine;
// requests made before the Tick runs merge into one.
func (s *Server) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
		return // a wake-up is pending already
	}
	if len(s.conns) == 1 {
		// The single-connection loop blocks in read: interrupt it. runOne re-arms its
		// deadline after every timeout, so this never sticks.
		s.conns[0].pc.SetReadDeadline(aLongTimeAgo)
	}
}

// ErrNoConn is returned by Run when the Server has no connection.
var ErrNoConn = errors.New("serve: no connection to serve")

// Run drives the engine until ctx is cancelled (then it returns nil) or a connection
// fails for good (it is closed: the error is returned). Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if len(s.conns) == 0 {
		return ErrNoConn
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("serve: Run called twice")
	}
	defer s.flushLog()
	if len(s.conns) == 1 {
		return s.runOne(ctx, s.conns[0])
	}
	return s.runMany(ctx)
}

// runOne is the loop over a single connection: the engine goroutine reads itself, with
// the engine's Deadline as the read deadline, so a datagram costs no goroutine switch.
func (s *Server) runOne(ctx context.Context, c *conn) error {
	stop := context.AfterFunc(ctx, func() { c.pc.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	buf := make([]byte, s.max+1)
	var cur time.Time
	first := true
	var backoff time.Duration
	poll := s.busyPoll > 0 && c.pollable()
	var lastDatagram time.Time
	for {
		if poll && time.Since(lastDatagram) < s.busyPoll && s.spin(ctx, c, buf, lastDatagram.Add(s.busyPoll)) {
			lastDatagram = time.Now()
			continue
		}
		if dl := s.deadline(); first || !dl.Equal(cur) {
			if err := c.pc.SetReadDeadline(dl); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("serve: set read deadline: %w", err)
			}
			cur, first = dl, false
		}
		// Checked after setting the deadline: a cancellation or Wake from now on sets
		// its past deadline after ours and so interrupts the read below.
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-s.wake:
			s.tick(time.Now())
			first = true // Wake may have set a past deadline: re-arm ours
			continue
		default:
		}
		n, from, oversized, err := c.read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTimeout(err) {
				select {
				case <-s.wake:
				default:
				}
				s.tick(time.Now())
				first = true // the timeout may have been Wake's past deadline
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("serve: read: %w", err)
			}
			s.readError(err)
			backoff = nextBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		s.handle(buf, n, from, oversized, s.clock.Now())
		lastDatagram = time.Now()
	}
}

// handle passes one datagram read into buf to the engine, or counts why not.
func (s *Server) handle(buf []byte, n int, from netip.AddrPort, oversized bool, mark uint64) {
	if oversized {
		s.dropOversized(n, from)
		return
	}
	if !from.IsValid() {
		s.unaddressable()
		return
	}
	s.receive(time.Now(), from, buf[:n], mark)
}

// spin polls c without blocking until a datagram arrives (it is handled), a timer or
// Wake needs a Tick (it runs), or until passes; it reports whether it did anything.
// Errors, cancellation and a past read deadline end the spin for the blocking path,
// which reports or handles them.
func (s *Server) spin(ctx context.Context, c *conn, buf []byte, until time.Time) bool {
	for {
		n, from, oversized, ok, err := c.tryRead(buf)
		if err != nil {
			return false
		}
		if ok {
			s.handle(buf, n, from, oversized, s.clock.Now())
			return true
		}
		now := time.Now()
		if dl := s.deadline(); !dl.IsZero() && !now.Before(dl) {
			s.tick(now)
			return true
		}
		select {
		case <-s.wake:
			s.tick(now)
			return true
		default:
		}
		if ctx.Err() != nil || !now.Before(until) {
			return false
		}
		runtime.Gosched() // let the process's other goroutines run, even on one core
	}
}

// receive hands one datagram to the engine, sends what it returns, and runs the timers
// if they are due: under a steady stream of datagrams the read deadline never fires.
func (s *Server) receive(now time.Time, from netip.AddrPort, b []byte, mark uint64) {
	s.received.Add(1)
	s.out = s.eng.Receive(now, broker.Datagram{Addr: from, B: b, Mark: mark}, s.out[:0])
	s.commitAndSend(now, s.out)
	if dl := s.deadline(); !dl.IsZero() && !now.Before(dl) {
		s.tick(now)
	}
}

func (s *Server) tick(now time.Time) {
	s.ticks.Add(1)
	s.out = s.eng.Tick(now, s.out[:0])
	s.commitAndSend(now, s.out)
}

// deadline is when the loop must wake with no traffic: the engine's timers, or a
// Commit that is due.
func (s *Server) deadline() time.Time {
	d := s.eng.Deadline()
	if s.commitDeadline != nil {
		if c := s.commitDeadline(); !c.IsZero() && (d.IsZero() || c.Before(d)) {
			d = c
		}
	}
	return d
}

// commitAndSend runs Commit, then sends out if it succeeded.
func (s *Server) commitAndSend(now time.Time, out []broker.Datagram) {
	if s.commit != nil {
		if err := s.commit(now); err != nil {
			s.commitErrors.Add(1)
			s.limited(keyCommit, slog.LevelError, "commit failed; datagrams withheld",
				slog.Int("datagrams", len(out)), slog.String("err", err.Error()))
			return
		}
	}
	s.send(out)
}

// send writes every datagram of out; broadcast ones to each broadcast address, on
// each connection that reaches it.
func (s *Server) send(out []broker.Datagram) {
	for i := range out {
		d := &out[i]
		if d.IsBroadcast() {
			for _, to := range s.bcast {
				for _, c := range s.conns {
					if c.reaches(to.Addr()) && s.write(c, d, to) {
						s.broadcasts.Add(1)
					}
				}
			}
			continue
		}
		c := s.connFor(d.Addr)
		if c == nil {
			s.writeFailed(errors.New("no connection reaches this address family"), d.Addr)
			continue
		}
		s.write(c, d, d.Addr)
	}
}

func (s *Server) write(c *conn, d *broker.Datagram, to netip.AddrPort) bool {
	if err := c.write(d.B, to); err != nil {
		s.writeFailed(err, to)
		return false
	}
	s.sent.Add(1)
	if s.observe != nil && d.Mark != 0 {
		s.observe(d.Mark, s.clock.Now())
	}
	return true
}

// connFor picks the connection to send to a peer: the one it was last heard on, else
// the first that reaches its address family.
func (s *Server) connFor(to netip.AddrPort) *conn {
	if len(s.conns) == 1 {
		return s.conns[0]
	}
	if c := s.route[to]; c != nil {
		return c
	}
	for _, c := range s.conns {
		if c.reaches(to.Addr()) {
			return c
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// nextBackoff doubles the pause after consecutive read errors, 5 ms to 1 s, as
// net/http does for Accept, so a persistent error cannot spin a core.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	if d *= 2; d > time.Second {
		d = time.Second
	}
	return d
}

// sleepCtx pauses for d; it reports false if ctx was cancelled meanwhile.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
