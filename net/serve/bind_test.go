package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// scriptBind is a Bind on synthetic time: ReceiveBatch hands out the batches queued
// with push, and when none is queued it jumps the clock to the read deadline and
// reports a timeout — so the loop's timing is tested without waiting. Once the
// script is used up it reports net.ErrClosed, which ends Run.
type scriptBind struct {
	mu       sync.Mutex
	now      time.Time
	deadline time.Time
	batches  [][]Packet
	idle     int // timeouts left to hand out when nothing is queued

	sent    []Packet
	failAt  map[int]error // send index → error
	sends   int
	calls   int // SendBatch calls
	reaches func(netip.Addr) bool
	batch   int
}

func (b *scriptBind) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *scriptBind) push(ps ...Packet) {
	b.mu.Lock()
	b.batches = append(b.batches, ps)
	b.mu.Unlock()
}

func (b *scriptBind) ReceiveBatch(pkts []Packet) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.batches) > 0 {
		n := 0
		for _, p := range b.batches[0] {
			if n == len(pkts) {
				break
			}
			c := copy(pkts[n].Buf, p.Buf)
			pkts[n].N, pkts[n].Addr, pkts[n].Trunc = c, p.Addr, p.Trunc || c < len(p.Buf)
			n++
		}
		b.batches[0] = b.batches[0][n:]
		if len(b.batches[0]) == 0 {
			b.batches = b.batches[1:]
		}
		return n, nil
	}
	if b.idle == 0 {
		return 0, net.ErrClosed
	}
	b.idle--
	if !b.deadline.IsZero() && b.deadline.After(b.now) {
		b.now = b.deadline
	}
	return 0, os.ErrDeadlineExceeded
}

func (b *scriptBind) SendBatch(pkts []Packet) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	for i, p := range pkts {
		if err := b.failAt[b.sends]; err != nil {
			b.sends++
			return i, err
		}
		b.sends++
		b.sent = append(b.sent, Packet{Buf: append([]byte(nil), p.Buf...), Addr: p.Addr})
	}
	return len(pkts), nil
}

func (b *scriptBind) SetReadDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.mu.Unlock()
	return nil
}

func (b *scriptBind) Reaches(a netip.Addr) bool {
	if b.reaches != nil {
		return b.reaches(a)
	}
	return true
}

func (b *scriptBind) BatchSize() int {
	if b.batch > 0 {
		return b.batch
	}
	return 8
}

func (b *scriptBind) String() string { return "script" }

var peer = netip.MustParseAddrPort("192.0.2.1:5000")

func pkt(s string) Packet { return Packet{Buf: []byte(s), Addr: peer} }

// Timers run at the engine's deadlines on synthetic time: every Tick sees exactly the
// deadline it asked for, and datagrams between them are handled in order.
func TestLoopOnSyntheticTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &scriptBind{now: start, idle: 3}
	eng := &fakeEngine{}
	var ticksAt []time.Time
	eng.deadline = start.Add(10 * time.Second)
	eng.onTick = func(now time.Time, out []broker.Datagram) []broker.Datagram {
		ticksAt = append(ticksAt, now)
		eng.deadline = now.Add(10 * time.Second)
		return append(out, broker.Datagram{Addr: peer, B: []byte("tick")})
	}
	b.push(pkt("a"), pkt("b"), pkt("c"))
	s := NewBind(eng, Options{Logger: quietLogger(), Now: b.clock}, b)
	if err := s.Run(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Run: %v, want the script's end (closed)", err)
	}
	want := []time.Time{start.Add(10 * time.Second), start.Add(20 * time.Second), start.Add(30 * time.Second)}
	if fmt.Sprint(ticksAt) != fmt.Sprint(want) {
		t.Errorf("ticks at %v, want %v", ticksAt, want)
	}
	var got []string
	for _, p := range b.sent {
		got = append(got, string(p.Buf))
	}
	if fmt.Sprint(got) != "[a b c tick tick tick]" {
		t.Errorf("sent %v", got)
	}
	st := s.Stats()
	if st.Received != 3 || st.Batches != 1 || st.Sent != 6 || st.Ticks != 3 {
		t.Errorf("stats %+v", st)
	}
}

// A batch larger than the loop's is read in several; oversized and unaddressable
// datagrams in a batch are counted without disturbing their neighbours.
func TestLoopBatches(t *testing.T) {
	b := &scriptBind{batch: 4}
	eng := &fakeEngine{}
	var ps []Packet
	for i := range 10 {
		ps = append(ps, pkt(fmt.Sprint(i)))
	}
	ps[3] = Packet{Buf: make([]byte, 200), Addr: peer} // over MaxDatagram
	ps[6] = Packet{Buf: []byte("x")}                   // no source
	b.push(ps...)
	s := NewBind(eng, Options{Logger: quietLogger(), MaxDatagram: 100, Now: b.clock}, b)
	s.Run(context.Background())
	var got []string
	for _, r := range eng.received {
		got = append(got, string(r))
	}
	if fmt.Sprint(got) != "[0 1 2 4 5 7 8 9]" {
		t.Errorf("engine got %v", got)
	}
	st := s.Stats()
	if st.Batches != 3 || st.Oversized != 1 || st.ReadErrors != 1 || st.Received != 8 || st.Sent != 8 {
		t.Errorf("stats %+v", st)
	}
	// What a batch produced is committed and sent together: one SendBatch per batch.
	if b.calls != 3 {
		t.Errorf("%d SendBatch calls for 3 receive batches", b.calls)
	}
}

// A datagram that does not leave is counted under its reason and the rest of its
// batch still goes: the counters never call "sent" what did not leave.
func TestSendFailuresCountedByReason(t *testing.T) {
	b := &scriptBind{failAt: map[int]error{
		1: fmt.Errorf("ring: %w", ErrTxQueueFull),
		3: fmt.Errorf("enet: %w", ErrNIC),
		5: fmt.Errorf("arp: %w", ErrNoRoute),
		7: errors.New("something else"),
	}}
	eng := &fakeEngine{}
	eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
		for i := range 10 {
			out = append(out, broker.Datagram{Addr: peer, B: []byte{byte('0' + i)}, Mark: in.Mark})
		}
		return out
	}
	var observed int
	b.push(pkt("go"))
	s := NewBind(eng, Options{Logger: quietLogger(), Now: b.clock, Observe: func(mark, sent uint64) { observed++ }}, b)
	s.Run(context.Background())
	var got string
	for _, p := range b.sent {
		got += string(p.Buf)
	}
	if got != "024689" {
		t.Errorf("sent %q, want every datagram but the 4 refused", got)
	}
	st := s.Stats()
	want := [NumTxReasons]uint64{TxQueueFull: 1, TxNICError: 1, TxNoRoute: 1, TxError: 1}
	if st.Sent != 6 || st.WriteErrors != 4 || st.TxDrops != want || observed != 6 {
		t.Errorf("sent %d, write errors %d, by reason %v, observed %d", st.Sent, st.WriteErrors, st.TxDrops, observed)
	}
}

// Broadcasts go to each broadcast address the Bind reaches, and only those.
func TestBroadcastOverBind(t *testing.T) {
	b := &scriptBind{reaches: func(a netip.Addr) bool { return a.Is4() }}
	eng := &fakeEngine{}
	eng.onReceive = func(in broker.Datagram, out []broker.Datagram) []broker.Datagram {
		return append(out, broker.Datagram{B: []byte("adv")}, in)
	}
	b.push(pkt("x"))
	bc4 := netip.MustParseAddrPort("255.255.255.255:1883")
	bc6 := netip.MustParseAddrPort("[ff02::1]:1883")
	s := NewBind(eng, Options{Logger: quietLogger(), Now: b.clock, Broadcast: []netip.AddrPort{bc4, bc6}}, b)
	s.Run(context.Background())
	if len(b.sent) != 2 || b.sent[0].Addr != bc4 || string(b.sent[1].Buf) != "x" {
		t.Fatalf("sent %+v", b.sent)
	}
	if st := s.Stats(); st.Broadcasts != 1 || st.Sent != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A failed Commit withholds everything its batch produced, and the next batch goes out.
func TestCommitFailureWithholdsTheBatch(t *testing.T) {
	b := &scriptBind{batch: 4}
	b.push(pkt("1"), pkt("2"))
	b.push(pkt("3"))
	eng := &fakeEngine{}
	commits := 0
	s := NewBind(eng, Options{Logger: quietLogger(), Now: b.clock, Commit: func(time.Time) error {
		commits++
		if commits == 1 {
			return errors.New("disk full")
		}
		return nil
	}}, b)
	s.Run(context.Background())
	if len(b.sent) != 1 || string(b.sent[0].Buf) != "3" {
		t.Errorf("sent %+v, want only the second batch's datagram", b.sent)
	}
	if st := s.Stats(); st.CommitErrors != 1 || st.Sent != 1 || commits != 2 {
		t.Errorf("stats %+v, %d commits", st, commits)
	}
}
