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

	// Clock stamps each received batch (the Mark of its datagrams) and each sent
	// datagram. Nil: the monotonic clock in nanoseconds. It is read on the loop's
	// goroutine only.
	Clock Clock

	// Now is the time the engine is given and its deadlines are compared with. Nil:
	// time.Now. Tests drive the loop on synthetic time with a Now of their own and a
	// Bind that advances it when asked to wait for a deadline.
	Now func() time.Time

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
	// coming. Only a single Bind that is a [Poller] polls (net/udp's on Linux, a
	// *net.UDPConn on Linux, gVisor's endpoint on the image), and only with GOMAXPROCS
	// of 2 or more where the Bind is a kernel socket (with one P, the spinning loop
	// would keep the runtime from noticing the process's other network events until
	// sysmon's 10 ms poll); elsewhere this is ignored.
	BusyPoll time.Duration
}

// Stats counts what the driver did. Engine-level counts are in broker.Stats.
type Stats struct {
	Received     uint64 // datagrams handed to the engine
	Sent         uint64 // datagrams the socket or NIC took (a broadcast counts once per destination)
	Broadcasts   uint64 // broadcast datagrams sent, per destination
	Batches      uint64 // receive batches read (Received/Batches is the mean batch)
	Oversized    uint64 // datagrams longer than MaxDatagram, dropped
	ReadErrors   uint64 // failed reads (other than timeouts and shutdown), and datagrams without a usable source address
	WriteErrors  uint64 // datagrams the engine emitted that did not leave, all reasons (TxDrops has them by reason)
	CommitErrors uint64 // failed Commits; the datagrams of those calls were not sent
	Ticks        uint64 // calls to Engine.Tick

	// TxDrops counts the datagrams that did not leave, by reason (TxReason).
	TxDrops [NumTxReasons]uint64
}

// TxReason is why a datagram the engine emitted did not leave.
type TxReason uint8

const (
	TxQueueFull TxReason = iota // the transmit queue or NIC ring stayed full past the back-pressure bound
	TxNICError                  // the network controller refused the frame
	TxNoRoute                   // no route, link address or socket for the destination
	TxError                     // any other write error
	NumTxReasons
)

var txReasonNames = [NumTxReasons]string{"tx_queue_full", "nic_error", "no_route", "write_error"}

func (r TxReason) String() string {
	if r < NumTxReasons {
		return txReasonNames[r]
	}
	return "unknown"
}

// txReasonOf classifies a SendBatch error.
func txReasonOf(err error) TxReason {
	switch {
	case errors.Is(err, ErrTxQueueFull):
		return TxQueueFull
	case errors.Is(err, ErrNIC):
		return TxNICError
	case errors.Is(err, ErrNoRoute):
		return TxNoRoute
	}
	return TxError
}

// Server runs the engine over a Bind. Create it with New or NewBind.
type Server struct {
	eng            Engine
	bind           Bind
	join           *joined // non-nil when bind joins several
	bcast          []netip.AddrPort
	max            int
	clock          Clock
	now            func() time.Time
	observe        func(mark, sent uint64)
	commit         func(now time.Time) error
	commitDeadline func() time.Time
	log            *slog.Logger
	rl             *rateLimiter
	running        atomic.Bool
	busyPoll       time.Duration

	// wake carries Wake's request to the loop's goroutine (capacity 1: requests merge).
	wake chan struct{}

	// The loop goroutine's state.
	out    []broker.Datagram
	in     []Packet // the receive batch, buffers of max+1 octets
	send   []Packet // what the batch produced, staged to be committed and sent
	marks  []uint64 // send[i]'s Mark
	arena  []byte   // the staged datagrams' octets, copied out of the engine's buffers
	bcPkt  []Packet // one broadcast destination at a time
	bcMark [1]uint64

	received, sent, broadcasts, batches, oversized, readErrors, writeErrors, commitErrors, ticks atomic.Uint64
	txDrops                                                                                      [NumTxReasons]atomic.Uint64
}

// New returns a server driving eng over conns (at least one), each adapted with
// [PacketConnBind]. The caller keeps ownership of the connections: Run does not close
// them.
func New(eng Engine, opts Options, conns ...net.PacketConn) *Server {
	binds := make([]Bind, len(conns))
	for i, pc := range conns {
		binds[i] = PacketConnBind(pc)
	}
	return NewBind(eng, opts, binds...)
}

// NewBind returns a server driving eng over binds (at least one): one Bind is read
// directly, several are joined (a reader each, replies on the Bind the peer was heard
// on). The caller keeps ownership of the Binds.
func NewBind(eng Engine, opts Options, binds ...Bind) *Server {
	s := &Server{
		eng:            eng,
		bcast:          opts.Broadcast,
		max:            opts.MaxDatagram,
		clock:          opts.Clock,
		now:            opts.Now,
		observe:        opts.Observe,
		commit:         opts.Commit,
		commitDeadline: opts.CommitDeadline,
		log:            opts.Logger,
		rl:             newRateLimiter(opts.LogWindow),
		out:            make([]broker.Datagram, 0, 64),
		wake:           make(chan struct{}, 1),
		busyPoll:       opts.BusyPoll,
		bcPkt:          make([]Packet, 1),
	}
	if s.max <= 0 {
		s.max = DefaultMaxDatagram
	}
	if s.clock == nil {
		s.clock = newMonoClock()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	switch len(binds) {
	case 0:
	case 1:
		s.bind = binds[0]
	default:
		s.join = join(binds, s.max+1)
		s.bind = s.join
	}
	if s.bind != nil {
		n := max(s.bind.BatchSize(), 1)
		s.in = make([]Packet, n)
		for i := range s.in {
			s.in[i].Buf = make([]byte, s.max+1)
		}
		s.send = make([]Packet, 0, max(n, 64))
		s.marks = make([]uint64, 0, max(n, 64))
		s.arena = make([]byte, 0, 16<<10)
	}
	return s
}

// Stats returns the driver's counters. It is safe to call from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{
		Received:     s.received.Load(),
		Sent:         s.sent.Load(),
		Broadcasts:   s.broadcasts.Load(),
		Batches:      s.batches.Load(),
		Oversized:    s.oversized.Load(),
		ReadErrors:   s.readErrors.Load(),
		WriteErrors:  s.writeErrors.Load(),
		CommitErrors: s.commitErrors.Load(),
		Ticks:        s.ticks.Load(),
	}
	for i := range st.TxDrops {
		st.TxDrops[i] = s.txDrops[i].Load()
	}
	return st
}

// aLongTimeAgo is a read deadline in the past: it interrupts a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// Wake makes the loop's goroutine call Engine.Tick soon, even with no traffic and no
// timer due: how another goroutine (a bridge with messages from upstream) gets work
// onto the engine, which only the loop's goroutine may touch. Safe from any goroutine;
// requests made before the Tick runs merge into one.
func (s *Server) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
		return // a wake-up is pending already
	}
	if s.bind != nil {
		// The loop blocks in ReceiveBatch: interrupt it. The loop re-arms its deadline
		// after every timeout, so this never sticks.
		s.bind.SetReadDeadline(aLongTimeAgo)
	}
}

// ErrNoConn is returned by Run when the Server has no connection.
var ErrNoConn = errors.New("serve: no connection to serve")

// Run drives the engine until ctx is cancelled (then it returns nil) or the Bind fails
// for good (it was closed: the error is returned). Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if s.bind == nil {
		return ErrNoConn
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("serve: Run called twice")
	}
	defer s.flushLog()
	if s.join != nil {
		s.join.start()
		defer s.join.stop()
	}
	return s.loop(ctx)
}

// loop is the one driver loop, for every build: it receives a batch (blocking with the
// engine's Deadline as the read deadline, or polling), hands each datagram to the
// engine, sends what each call returns before the next (the engine's output aliases
// its buffers until then), and runs the timers when they are due.
func (s *Server) loop(ctx context.Context) error {
	b := s.bind
	stop := context.AfterFunc(ctx, func() { b.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	var cur time.Time
	first := true
	var backoff time.Duration
	poller, poll := b.(Poller)
	poll = poll && s.busyPoll > 0 && (s.join == nil) && runtime.GOMAXPROCS(0) >= 2
	var lastDatagram time.Time
	for {
		if poll && s.now().Sub(lastDatagram) < s.busyPoll && s.spin(ctx, poller, lastDatagram.Add(s.busyPoll)) {
			lastDatagram = s.now()
			continue
		}
		if dl := s.deadline(); first || !dl.Equal(cur) {
			if err := b.SetReadDeadline(dl); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("serve: set read deadline: %w", err)
			}
			cur, first = dl, false
		}
		// Checked after setting the deadline: a cancellation or Wake from now on sets
		// its past deadline after ours and so interrupts the receive below.
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-s.wake:
			s.tick(s.now())
			first = true // Wake may have set a past deadline: re-arm ours
			continue
		default:
		}
		n, err := b.ReceiveBatch(s.in)
		if n > 0 {
			s.handleBatch(s.in[:n])
			lastDatagram = s.now()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isTimeout(err) {
				select {
				case <-s.wake:
				default:
				}
				s.tick(s.now())
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
	}
}

// handleBatch passes each datagram of a received batch to the engine, or counts why
// not, then makes durable and sends everything the batch produced in one go: one
// Commit and one SendBatch per batch instead of per datagram. The batch shares one
// stamp: its datagrams were read together.
func (s *Server) handleBatch(pkts []Packet) {
	s.batches.Add(1)
	mark := s.clock.Now()
	now := s.now()
	for i := range pkts {
		p := &pkts[i]
		switch {
		case p.Trunc || p.N > s.max:
			s.dropOversized(p.N, p.Addr)
		case !p.Addr.IsValid():
			s.unaddressable()
		default:
			s.received.Add(1)
			s.out = s.eng.Receive(now, broker.Datagram{Addr: p.Addr, B: p.Buf[:p.N], Mark: mark}, s.out[:0])
			s.stage(now, s.out)
		}
	}
	// Under a steady stream of datagrams the read deadline never fires: run the
	// timers here when they are due.
	if dl := s.deadline(); !dl.IsZero() && !now.Before(dl) {
		s.ticks.Add(1)
		s.out = s.eng.Tick(now, s.out[:0])
		s.stage(now, s.out)
	}
	s.commitAndFlush(now)
}

// spin polls without blocking until a batch arrives (it is handled), a timer or Wake
// needs a Tick (it runs), or until passes; it reports whether it did anything. Errors,
// cancellation and a past read deadline end the spin for the blocking path, which
// reports or handles them.
func (s *Server) spin(ctx context.Context, p Poller, until time.Time) bool {
	for {
		n, err := p.TryReceiveBatch(s.in)
		if n > 0 {
			s.handleBatch(s.in[:n])
			return true
		}
		if err != nil {
			return false
		}
		now := s.now()
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

// tick runs the engine's timers and sends what they produce.
func (s *Server) tick(now time.Time) {
	s.ticks.Add(1)
	s.out = s.eng.Tick(now, s.out[:0])
	s.stage(now, s.out)
	s.commitAndFlush(now)
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

// maxStaged bounds what one batch may stage before it is committed and sent early:
// the datagrams, and the octets copied out of the engine's buffers.
const (
	maxStaged      = 512
	maxStagedBytes = 256 << 10
)

// stage copies the datagrams of one engine call out of the engine's buffers (they
// alias them only until its next call) into the loop's send arena, to be sent with
// the rest of the batch. Past the bounds, what is staged is committed and sent now.
func (s *Server) stage(now time.Time, out []broker.Datagram) {
	for i := range out {
		d := &out[i]
		if len(s.send) >= maxStaged || len(s.arena)+len(d.B) > maxStagedBytes {
			s.commitAndFlush(now)
		}
		start := len(s.arena)
		s.arena = append(s.arena, d.B...)
		s.send = append(s.send, Packet{Buf: s.arena[start:len(s.arena):len(s.arena)], Addr: d.Addr})
		s.marks = append(s.marks, d.Mark)
	}
}

// commitAndFlush runs Commit, then sends what is staged if it succeeded: an
// acknowledgement never leaves ahead of the state it acknowledges.
func (s *Server) commitAndFlush(now time.Time) {
	if s.commit != nil {
		if err := s.commit(now); err != nil {
			s.commitErrors.Add(1)
			s.limited(keyCommit, slog.LevelError, "commit failed; datagrams withheld",
				slog.Int("datagrams", len(s.send)), slog.String("err", err.Error()))
			s.resetStaged()
			return
		}
	}
	if len(s.send) == 0 {
		return
	}
	// Unicast runs go out in SendBatch calls of the Bind's size; a broadcast (the
	// zero address) to each broadcast address its Bind reaches.
	pkts, marks := s.send, s.marks
	for len(pkts) > 0 {
		if !pkts[0].Addr.IsValid() {
			s.broadcast(&pkts[0], marks[0])
			pkts, marks = pkts[1:], marks[1:]
			continue
		}
		n := 1
		for n < len(pkts) && n < s.bind.BatchSize() && pkts[n].Addr.IsValid() {
			n++
		}
		s.flush(pkts[:n], marks[:n])
		pkts, marks = pkts[n:], marks[n:]
	}
	s.resetStaged()
}

func (s *Server) resetStaged() {
	clear(s.send) // drop references into the arena's old arrays
	s.send, s.marks, s.arena = s.send[:0], s.marks[:0], s.arena[:0]
}

// flush sends batch, whose datagrams carry marks; a datagram that fails is counted by
// reason and the rest still go.
func (s *Server) flush(batch []Packet, marks []uint64) {
	for len(batch) > 0 {
		n, err := s.bind.SendBatch(batch)
		s.sentOK(marks[:n])
		if n >= len(batch) {
			return
		}
		if err == nil {
			err = errors.New("short send with no error")
		}
		s.writeFailed(err, batch[n].Addr, txReasonOf(err))
		batch, marks = batch[n+1:], marks[n+1:]
	}
}

// sentOK counts datagrams that left and observes their residence time.
func (s *Server) sentOK(marks []uint64) {
	if len(marks) == 0 {
		return
	}
	s.sent.Add(uint64(len(marks)))
	if s.observe == nil {
		return
	}
	for _, m := range marks {
		if m != 0 {
			s.observe(m, s.clock.Now())
		}
	}
}

// broadcast sends p to each broadcast address on every socket that reaches it.
func (s *Server) broadcast(p *Packet, mark uint64) {
	binds := []Bind{s.bind}
	if s.join != nil {
		binds = s.join.subs
	}
	for _, to := range s.bcast {
		for _, b := range binds {
			if !b.Reaches(to.Addr()) {
				continue
			}
			s.bcPkt[0] = Packet{Buf: p.Buf, Addr: to}
			if n, err := b.SendBatch(s.bcPkt); n != 1 {
				s.writeFailed(err, to, txReasonOf(err))
				continue
			}
			s.broadcasts.Add(1)
			s.bcMark[0] = mark
			s.sentOK(s.bcMark[:])
		}
	}
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
