package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/musqratt/musqratt/net/serve"
)

// DefaultBatch is the batch NewBind uses when asked for none: enough datagrams per
// system call that a burst costs a few calls, few enough that the buffers a caller
// keeps for one batch stay small.
const DefaultBatch = 32

// MaxBatch caps the batch: beyond it a system call no longer costs noticeably less
// per datagram (Linux's own UIO_MAXIOV-sized limit for sendmmsg is 1024), while the
// caller's buffers, 64 KiB each for the largest MQTT-SN message, keep growing.
const MaxBatch = 128

// bindCommon is the part of a Bind every platform has; bind_linux.go and
// bind_other.go declare Bind around it with what their batches need.
type bindCommon struct {
	c     *net.UDPConn
	batch int
	local netip.AddrPort
	name  string

	// Which peer address families the socket can reach (see NewBind).
	reaches4, reaches6 bool
}

var _ serve.Poller = (*Bind)(nil)

// NewBind wraps c. batch is the most datagrams one call moves (<= 0: DefaultBatch;
// capped at MaxBatch); on platforms without batched system calls it is 1. Everything
// a batch needs is allocated here, so that ReceiveBatch, TryReceiveBatch and
// SendBatch allocate nothing.
//
// Which destinations the Bind reaches follows from c's local address, as net/serve
// decides for a plain connection: an IPv4 socket reaches IPv4 only, an IPv6 socket
// bound to a specific address IPv6 only, a wildcard IPv6 socket both (as
// IPv4-mapped IPv6). On Linux a wildcard IPv6 socket with IPV6_V6ONLY set reaches
// IPv6 only, since the kernel would refuse IPv4 there anyway.
func NewBind(c *net.UDPConn, batch int) (*Bind, error) {
	if c == nil {
		return nil, fmt.Errorf("udp: bind: nil connection")
	}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || la == nil {
		return nil, fmt.Errorf("udp: bind: socket has no local address (closed?)")
	}
	if batch <= 0 {
		batch = DefaultBatch
	}
	batch = min(batch, MaxBatch)
	b := &Bind{bindCommon: bindCommon{c: c, batch: batch, local: la.AddrPort(), name: la.String(), reaches4: true, reaches6: true}}
	switch a := b.local.Addr().Unmap(); {
	case a.Is4():
		b.reaches6 = false
	case a.Is6() && !a.IsUnspecified():
		b.reaches4 = false
	}
	if err := b.init(); err != nil {
		return nil, fmt.Errorf("udp: bind %s: %w", b.name, err)
	}
	return b, nil
}

// Reaches reports whether the socket can send to a (its address family).
func (b *Bind) Reaches(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if a.Unmap().Is4() {
		return b.reaches4
	}
	return b.reaches6
}

// BatchSize is the most datagrams one call moves.
func (b *Bind) BatchSize() int { return b.batch }

// String is the socket's local address ("[::]:1883").
func (b *Bind) String() string { return b.name }

// SetReadDeadline sets when a blocked ReceiveBatch gives up (see [serve.Bind]).
func (b *Bind) SetReadDeadline(t time.Time) error { return b.c.SetReadDeadline(t) }

// noRoute is the error for a destination the socket's family cannot reach: no
// system call is made for it.
func (b *Bind) noRoute(to netip.AddrPort) error {
	return fmt.Errorf("udp: send to %v from %s: %w (address family not served by this socket)", to, b.name, serve.ErrNoRoute)
}

// sendError says why the datagram to to did not leave, wrapping the drop reason the
// loop counts it under (none for an error that is not one of them) and the errno.
func sendError(to netip.AddrPort, from string, err error) error {
	var reason error
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ENOBUFS):
		reason = serve.ErrTxQueueFull
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EADDRNOTAVAIL):
		reason = serve.ErrNoRoute
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError("sendmmsg", errno)
	}
	if reason == nil {
		return fmt.Errorf("udp: send to %v from %s: %w", to, from, err)
	}
	return fmt.Errorf("udp: send to %v from %s: %w: %w", to, from, reason, err)
}
