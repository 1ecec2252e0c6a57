//go:build !linux

package udp

// Without recvmmsg/sendmmsg a batch is one datagram: ReadMsgUDPAddrPort and
// WriteToUDPAddrPort, which neither allocate nor convert addresses through net.Addr.

import (
	"errors"
	"net"
	"net/netip"

	"github.com/musqratt/musqratt/net/serve"
)

// Bind moves batches of datagrams through one hosted UDP socket: it implements
// [serve.Bind] and [serve.Poller] for a *net.UDPConn. On Linux a batch is one
// recvmmsg(2) or sendmmsg(2); elsewhere a batch is one datagram.
//
// A Bind keeps one receive state (used by ReceiveBatch and TryReceiveBatch) and one
// send state (SendBatch): one goroutine may receive while another sends, but two
// goroutines may not receive, or send, at once. SetReadDeadline is safe from any
// goroutine. It does not own the socket: whoever opened it closes it, and a Bind on
// a closed socket fails with net.ErrClosed.
type Bind struct {
	bindCommon // one datagram per call needs nothing more
}

func (b *Bind) init() error {
	b.batch = 1
	return nil
}

// ReceiveBatch blocks until a datagram is waiting and reads it into pkts[0] (see
// [serve.Bind]).
func (b *Bind) ReceiveBatch(pkts []serve.Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	p := &pkts[0]
	n, _, flags, from, err := b.c.ReadMsgUDPAddrPort(p.Buf, nil)
	if err != nil {
		return 0, err
	}
	p.N = n
	// A datagram that filled the buffer may have been cut where MSG_TRUNC is not
	// reported (the loop's buffers are one octet longer than it accepts).
	p.Trunc = flags&msgTrunc != 0 || n >= len(p.Buf)
	p.Addr = from
	if a := from.Addr(); a.Is4In6() {
		p.Addr = netip.AddrPortFrom(a.Unmap(), from.Port())
	}
	return 1, nil
}

// TryReceiveBatch always returns 0 and no error here: a read that does not wait
// needs the raw socket, which is wired up on Linux only. Emulating it with a past
// read deadline would race with SetReadDeadline from another goroutine, which is
// how net/serve wakes its loop, and could lose that wake-up; a caller that polls
// simply finds nothing and falls back to ReceiveBatch.
func (b *Bind) TryReceiveBatch(pkts []serve.Packet) (int, error) { return 0, nil }

// SendBatch sends pkts one at a time (see [serve.Bind]). A destination whose family
// the socket does not reach is serve.ErrNoRoute without a system call. The runtime's
// poller waits for room when the send buffer is full (EAGAIN); ENOBUFS, which BSD
// kernels return when an interface queue is full, is serve.ErrTxQueueFull at once.
func (b *Bind) SendBatch(pkts []serve.Packet) (int, error) {
	for i := range pkts {
		p := &pkts[i]
		if !b.Reaches(p.Addr.Addr()) {
			return i, b.noRoute(p.Addr)
		}
		if _, err := b.c.WriteToUDPAddrPort(p.Buf, p.Addr); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return i, err
			}
			return i, sendError(p.Addr, b.name, err)
		}
	}
	return len(pkts), nil
}
