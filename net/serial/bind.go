package serial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

const (
	// DefaultMaxFrame is the longest frame accepted from the line unless
	// Options.MaxFrame says otherwise. Longer candidates are treated as noise; the
	// bound is also how long a corrupted length can hold up the frames behind it.
	DefaultMaxFrame = 2048
	// DefaultTxBuffer is the transmit queue unless Options.TxBuffer says otherwise:
	// room for the largest MQTT-SN message, whose 3-octet length counts to 65535.
	DefaultTxBuffer = 65536
	// DefaultWriteTimeout bounds how long SendBatch waits for room in the transmit
	// queue (the loop's back-pressure wait, like net/netstack's) before it counts the
	// datagram as dropped with serve.ErrTxQueueFull.
	DefaultWriteTimeout = 10 * time.Millisecond
	// MinInterByteTimeout is the least default inter-byte timeout: more than the
	// 16 ms latency timer of common USB serial adapters, which may hold the rest of a
	// frame back that long.
	MinInterByteTimeout = 20 * time.Millisecond
	// BatchSize is what [Bind.BatchSize] reports.
	BatchSize = 16

	readChunk = 512
)

// Options configure a [Bind]. The zero value works.
type Options struct {
	// Index is the line's index among the daemon's serial lines (0-based): it picks
	// the line's synthetic address (see [LineAddr]).
	Index int
	// Baud is the line's rate (Open sets it). New uses it only to derive the default
	// InterByteTimeout; 0 means unknown.
	Baud int
	// MaxFrame is the longest frame accepted (0: DefaultMaxFrame; at most 65535).
	MaxFrame int
	// InterByteTimeout is how long the line must be quiet before an incomplete frame
	// is given up (0: 20 character times at Baud, at least MinInterByteTimeout).
	InterByteTimeout time.Duration
	// WriteTimeout bounds SendBatch's wait for room (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// TxBuffer is the transmit queue in octets (0: DefaultTxBuffer). A datagram
	// longer than it is refused with serve.ErrNIC.
	TxBuffer int
}

// InterByteTimeout is the default inter-byte timeout at a baud rate: 20 character
// times (10 bits each, 8N1), at least MinInterByteTimeout.
func InterByteTimeout(baud int) time.Duration {
	if baud <= 0 {
		return MinInterByteTimeout
	}
	return max(time.Duration(20*10*int64(time.Second)/int64(baud)), MinInterByteTimeout)
}

// Stats counts what a Bind did.
type Stats struct {
	DeframeStats        // the receive side
	ReadErrors   uint64 // failed reads from the line (the reader stops at the first)
	TxFrames     uint64 // datagrams queued for the line
	TxOctets     uint64 // octets written to the line
	TxQueueFull  uint64 // datagrams refused after WriteTimeout (serve.ErrTxQueueFull)
	TxErrors     uint64 // failed writes to the line (the octets queued then are discarded)
}

// Bind is a [serve.Bind] (and [serve.Poller]) over a byte stream: MQTT-SN frames
// cut out of what the line receives, each reported as a datagram from the line's
// synthetic address, and datagrams to that address written to the line whole. See
// the package doc for the framing, the resynchronisation rules and the addresses.
type Bind struct {
	rw   io.ReadWriteCloser
	name string
	addr netip.AddrPort
	ibt  time.Duration // inter-byte timeout
	wto  time.Duration // write timeout

	mu        sync.Mutex
	d         *Deframer
	deadline  time.Time
	lastOctet time.Time
	readErr   error
	closed    bool
	readErrs  uint64

	data    chan struct{} // capacity 1: octets arrived, the line went quiet, or the reader stopped
	room    chan struct{} // capacity 1: ReceiveBatch consumed octets
	changed chan struct{} // capacity 1: SetReadDeadline since ReceiveBatch looked
	done    chan struct{} // closed by Close
	stall   *time.Timer   // inter-byte timer: reset by the reader, read by the watchdog
	timer   *time.Timer   // read deadline: the loop's goroutine only

	tx        txQueue
	sendTimer *time.Timer // the loop's goroutine only

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	// Static errors, so that a drop allocates nothing.
	errClosed, errNoRoute, errTooLong, errTxFull error
}

var (
	_ serve.Bind   = (*Bind)(nil)
	_ serve.Poller = (*Bind)(nil)
)

// errTimeout is what ReceiveBatch returns once the read deadline has passed: a
// net.Error whose Timeout is true, wrapping os.ErrDeadlineExceeded.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "serial: receive: " + os.ErrDeadlineExceeded.Error() }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// New serves MQTT-SN on the byte stream rw (a tty, a pipe, a socket), named name in
// logs and errors. It starts the goroutines that read and write rw; Close stops them
// and closes rw, which must make a pending Read and Write return (an *os.File of a
// tty opened non-blocking, a net.Conn and io.Pipe ends do).
func New(rw io.ReadWriteCloser, name string, opts Options) (*Bind, error) {
	if rw == nil {
		return nil, errors.New("serial: nil stream")
	}
	addr, err := LineAddr(opts.Index)
	if err != nil {
		return nil, err
	}
	if opts.MaxFrame < 0 || opts.MaxFrame > 65535 {
		return nil, fmt.Errorf("serial %s: max frame %d octets out of range 2..65535", name, opts.MaxFrame)
	}
	if opts.MaxFrame > 0 && opts.MaxFrame < 2 {
		return nil, fmt.Errorf("serial %s: max frame %d octets out of range 2..65535", name, opts.MaxFrame)
	}
	if opts.InterByteTimeout < 0 || opts.WriteTimeout < 0 || opts.TxBuffer < 0 {
		return nil, fmt.Errorf("serial %s: negative timeout or buffer in options", name)
	}
	ibt := opts.InterByteTimeout
	if ibt == 0 {
		ibt = InterByteTimeout(opts.Baud)
	}
	wto := opts.WriteTimeout
	if wto == 0 {
		wto = DefaultWriteTimeout
	}
	txb := opts.TxBuffer
	if txb == 0 {
		txb = DefaultTxBuffer
	}
	b := &Bind{
		rw:      rw,
		name:    name,
		addr:    addr,
		ibt:     ibt,
		wto:     wto,
		d:       NewDeframer(opts.MaxFrame),
		data:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
		stall:   stoppedTimer(),
		timer:   stoppedTimer(),
		tx: txQueue{
			buf:   make([]byte, txb),
			data:  make(chan struct{}, 1),
			space: make(chan struct{}, 1),
		},
		sendTimer:  stoppedTimer(),
		errClosed:  fmt.Errorf("serial %s: %w", name, net.ErrClosed),
		errNoRoute: fmt.Errorf("serial %s: send: only %v is on this line: %w", name, addr, serve.ErrNoRoute),
		errTooLong: fmt.Errorf("serial %s: send: datagram longer than the %d-octet transmit buffer: %w", name, txb, serve.ErrNIC),
		errTxFull:  fmt.Errorf("serial %s: send: line busy for %v: %w", name, wto, serve.ErrTxQueueFull),
	}
	b.wg.Add(3)
	go b.reader()
	go b.watchdog()
	go b.writer()
	return b, nil
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// Addr is the line's synthetic address: the source of every datagram received and
// the only destination SendBatch accepts.
func (b *Bind) Addr() netip.AddrPort { return b.addr }

// Reaches reports whether a is the line's address (the one peer it reaches).
func (b *Bind) Reaches(a netip.Addr) bool { return a == b.addr.Addr() }

// BatchSize is the most datagrams worth passing in one call.
func (b *Bind) BatchSize() int { return BatchSize }

// String names the line and its address for logs ("/dev/ttyUSB0 [100::1]:1").
func (b *Bind) String() string { return b.name + " " + b.addr.String() }

// Stats returns the counts so far.
func (b *Bind) Stats() Stats {
	b.mu.Lock()
	s := Stats{DeframeStats: b.d.Stats(), ReadErrors: b.readErrs}
	b.mu.Unlock()
	b.tx.mu.Lock()
	s.TxFrames, s.TxOctets, s.TxQueueFull, s.TxErrors = b.tx.frames, b.tx.octets, b.tx.full, b.tx.errors
	b.tx.mu.Unlock()
	return s
}

// Close stops the Bind's goroutines and closes the stream. A blocked ReceiveBatch
// returns an error wrapping net.ErrClosed, as do later calls.
func (b *Bind) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.tx.mu.Lock()
		b.tx.closed = true
		b.tx.mu.Unlock()
		close(b.done)
		b.closeErr = b.rw.Close()
		b.wg.Wait()
	})
	return b.closeErr
}

// reader moves what the line receives into the deframer, waiting for room when the
// loop has not taken the frames yet (back-pressure onto the line's own buffers).
func (b *Bind) reader() {
	defer b.wg.Done()
	buf := make([]byte, readChunk)
	for {
		n, err := b.rw.Read(buf)
		p := buf[:n]
		for len(p) > 0 {
			b.mu.Lock()
			k := b.d.Write(p)
			if k > 0 {
				b.lastOctet = time.Now()
			}
			b.mu.Unlock()
			p = p[k:]
			if k > 0 {
				b.stall.Reset(b.ibt)
				notify(b.data)
			}
			if len(p) > 0 {
				select {
				case <-b.room:
				case <-b.done:
					return
				}
			}
		}
		if err != nil {
			b.mu.Lock()
			if !b.closed {
				b.readErrs++
				b.readErr = fmt.Errorf("serial %s: read: %w", b.name, err)
			}
			b.d.Expire()
			b.mu.Unlock()
			notify(b.data)
			return
		}
	}
}

// watchdog tells the deframer when the line has been quiet for the inter-byte
// timeout.
func (b *Bind) watchdog() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stall.C:
		case <-b.done:
			return
		}
		b.mu.Lock()
		quiet := time.Since(b.lastOctet) >= b.ibt
		if quiet {
			b.d.Expire()
		}
		b.mu.Unlock()
		if quiet {
			notify(b.data)
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ReceiveBatch implements [serve.Bind]: it waits for frames and copies as many as
// are there into pkts, each from the line's address.
func (b *Bind) ReceiveBatch(pkts []serve.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	for {
		n, dl, err := b.take(pkts)
		if n > 0 || err != nil {
			return n, err
		}
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, errTimeout
			}
			b.timer.Reset(d)
			expired = b.timer.C
		}
		select {
		case <-b.data:
		case <-b.changed:
		case <-b.done:
		case <-expired:
			return 0, errTimeout
		}
		b.timer.Stop()
	}
}

// TryReceiveBatch implements [serve.Poller]: ReceiveBatch without the wait.
func (b *Bind) TryReceiveBatch(pkts []serve.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	n, _, err := b.take(pkts)
	return n, err
}

// take copies the frames the deframer has into pkts; with none, it says why not
// (closed, the reader's error) or returns the read deadline to wait for.
func (b *Bind) take(pkts []serve.Packet) (int, time.Time, error) {
	b.mu.Lock()
	before := b.d.Buffered()
	n := 0
	for n < len(pkts) {
		f := b.d.Next()
		if f == nil {
			break
		}
		p := &pkts[n]
		k := copy(p.Buf, f)
		p.N, p.Addr, p.Trunc = k, b.addr, k < len(f)
		n++
	}
	consumed := b.d.Buffered() < before
	closed, rerr, dl := b.closed, b.readErr, b.deadline
	b.mu.Unlock()
	if consumed {
		notify(b.room)
	}
	switch {
	case n > 0:
		return n, dl, nil
	case closed:
		return 0, dl, b.errClosed
	case rerr != nil:
		return 0, dl, rerr
	}
	return 0, dl, nil
}

// SetReadDeadline implements [serve.Bind]; it may be called from any goroutine.
func (b *Bind) SetReadDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.mu.Unlock()
	notify(b.changed)
	return nil
}
