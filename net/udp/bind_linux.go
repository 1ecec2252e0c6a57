//go:build linux

package udp

// The batches are recvmmsg(2) and sendmmsg(2) made from inside the callbacks of the
// socket's syscall.RawConn: the runtime's poller does the waiting, so read deadlines
// (how net/serve wakes its loop) and Close interrupt a blocked receive exactly as
// they interrupt ReadMsgUDPAddrPort.
//
// The system calls go through golang.org/x/sys/unix rather than syscall: syscall is
// frozen and has no SYS_SENDMMSG on amd64, and x/sys/unix carries both numbers and
// the msghdr/iovec layouts (with their per-architecture length setters) for every
// Linux port. Neither package has the mmsghdr wrapper, so it is declared here.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/musqratt/musqratt/net/serve"
)

// mmsghdr is struct mmsghdr of <sys/socket.h>: one message of a batch and, after
// the call, how many octets it moved. Go pads it like C does (to the alignment of
// its pointers), so a slice of them is the array the kernel walks.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// sendWait bounds how long SendBatch waits for room in a full send buffer, per
// batch of BatchSize, before it gives a datagram up as serve.ErrTxQueueFull: long
// enough for a NIC to drain a burst, short enough not to stall the loop that is
// sending for long when the queue stays full.
const sendWait = 5 * time.Millisecond

// Bind moves batches of datagrams through one hosted UDP socket: it implements
// [serve.Bind] and [serve.Poller] for a *net.UDPConn. On Linux a batch is one
// recvmmsg(2) or sendmmsg(2); elsewhere a batch is one datagram.
//
// A Bind keeps one receive state (used by ReceiveBatch and TryReceiveBatch) and one
// send state (SendBatch): one goroutine may receive while another sends, but two
// goroutines may not receive, or send, at once. SetReadDeadline is safe from any
// goroutine. The Bind owns the socket's write deadline (SendBatch uses it to bound
// its wait for room in a full send buffer). It does not own the socket: whoever
// opened it closes it, and a Bind on a closed socket fails with net.ErrClosed.
type Bind struct {
	bindCommon

	// What the batches need, allocated once in init so that a batch allocates
	// nothing: the headers, vectors and addresses for BatchSize messages each way,
	// and the RawConn callbacks, which take their arguments from and leave their
	// results in these fields.
	raw    syscall.RawConn
	family uint16 // the socket's: AF_INET or AF_INET6

	// Receiving (ReceiveBatch, TryReceiveBatch).
	rmsg   []mmsghdr
	riov   []unix.Iovec
	rsa    []unix.RawSockaddrAny
	rvlen  int        // messages offered to the kernel
	rgot   int        // messages it filled
	rerrno unix.Errno // its error, 0 if none
	recvFn func(fd uintptr) bool
	tryFn  func(fd uintptr) bool
	rzone  zoneCache

	// Sending (SendBatch).
	smsg     []mmsghdr
	siov     []unix.Iovec
	ssa      []unix.RawSockaddrInet6 // large enough for a sockaddr_in too
	svlen    int                     // messages prepared
	sdone    int                     // of which the kernel took
	serrno   unix.Errno              // why it refused message sdone, 0 if it did not
	sdeadset bool                    // a write deadline was set to bound a wait for room
	slast    bool                    // the wait is over: this is the last try
	sendFn   func(fd uintptr) bool
	szone    zoneCache
}

func (b *Bind) init() error {
	raw, err := b.c.SyscallConn()
	if err != nil {
		return err
	}
	b.raw = raw
	var domain, v6only int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil || domain != unix.AF_INET6 {
			return
		}
		v6only, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	switch domain {
	case unix.AF_INET:
		b.family, b.reaches6 = unix.AF_INET, false
	case unix.AF_INET6:
		b.family = unix.AF_INET6
		if v6only != 0 {
			b.reaches4 = false
		}
	default:
		return syscall.EAFNOSUPPORT
	}

	n := b.batch
	b.rmsg, b.riov, b.rsa = make([]mmsghdr, n), make([]unix.Iovec, n), make([]unix.RawSockaddrAny, n)
	b.smsg, b.siov, b.ssa = make([]mmsghdr, n), make([]unix.Iovec, n), make([]unix.RawSockaddrInet6, n)
	namelen := uint32(unix.SizeofSockaddrInet6)
	if b.family == unix.AF_INET {
		namelen = unix.SizeofSockaddrInet4
	}
	for i := range n {
		h := &b.rmsg[i].hdr
		h.Name, h.Iov = (*byte)(unsafe.Pointer(&b.rsa[i])), &b.riov[i]
		h.SetIovlen(1)
		h = &b.smsg[i].hdr
		h.Name, h.Namelen, h.Iov = (*byte)(unsafe.Pointer(&b.ssa[i])), namelen, &b.siov[i]
		h.SetIovlen(1)
	}
	b.recvFn = func(fd uintptr) bool { return b.recvmmsg(fd, 0) }
	b.tryFn = func(fd uintptr) bool { return b.recvmmsg(fd, unix.MSG_DONTWAIT) }
	b.sendFn = b.sendCallback
	return nil
}

// ReceiveBatch blocks until a datagram is waiting, then fills as many of pkts as
// are waiting, up to BatchSize (see [serve.Bind]).
func (b *Bind) ReceiveBatch(pkts []serve.Packet) (int, error) {
	return b.receive(pkts, b.recvFn)
}

// TryReceiveBatch is ReceiveBatch without the wait: it returns 0 and no error when
// no datagram is waiting. Like any read it fails once the read deadline has passed,
// which is how a busy-polling loop hears it is being woken or stopped.
func (b *Bind) TryReceiveBatch(pkts []serve.Packet) (int, error) {
	return b.receive(pkts, b.tryFn)
}

func (b *Bind) receive(pkts []serve.Packet, fn func(fd uintptr) bool) (int, error) {
	k := min(len(pkts), b.batch)
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		b.riov[i].Base = unsafe.SliceData(pkts[i].Buf)
		b.riov[i].SetLen(len(pkts[i].Buf))
	}
	b.rvlen = k
	err := b.raw.Read(fn)
	// Let go of the caller's buffers: the Bind must not keep them alive.
	for i := range k {
		b.riov[i].Base = nil
	}
	if err != nil {
		return 0, err // deadline (Timeout) or closed (net.ErrClosed), from the poller
	}
	switch b.rerrno {
	case 0:
	case unix.EAGAIN:
		return 0, nil // TryReceiveBatch with nothing waiting
	default:
		return 0, &net.OpError{Op: "read", Net: "udp", Addr: b.c.LocalAddr(), Err: os.NewSyscallError("recvmmsg", b.rerrno)}
	}
	for i := range b.rgot {
		p, m := &pkts[i], &b.rmsg[i]
		p.N = int(m.len)
		// msg_len is the octets copied, never more than the buffer: a datagram that
		// filled it may have been cut without the kernel saying so (the loop reads into
		// buffers one octet longer than the largest datagram it accepts).
		p.Trunc = m.hdr.Flags&unix.MSG_TRUNC != 0 || p.N >= len(p.Buf)
		p.Addr = b.from(&b.rsa[i])
	}
	return b.rgot, nil
}

// recvmmsg is the receive callback. With flags 0 it returns false when nothing is
// waiting, so that the poller waits for the socket to become readable (or for the
// deadline, or Close); with MSG_DONTWAIT it always returns true, leaving EAGAIN in
// rerrno. The socket is non-blocking, so the kernel returns what is queued, up to
// rvlen messages, without waiting for more.
func (b *Bind) recvmmsg(fd uintptr, flags int) bool {
	for {
		for i := range b.rvlen {
			b.rmsg[i].hdr.Namelen = unix.SizeofSockaddrAny
			b.rmsg[i].hdr.Flags = 0
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rmsg[0])),
			uintptr(b.rvlen), uintptr(flags), 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN && flags&unix.MSG_DONTWAIT == 0:
			return false
		case errno != 0:
			b.rgot, b.rerrno = 0, errno
		default:
			b.rgot, b.rerrno = int(r), 0
		}
		return true
	}
}

// from decodes a sender's address: an IPv4 peer of a dual-stack socket unmapped, an
// IPv6 scope id as a numeric zone (as net/serve's busy poll reports it).
func (b *Bind) from(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), portOf(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(b.rzone.name(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, portOf(&sa.Port))
	}
	return netip.AddrPort{}
}

// SendBatch sends pkts in order, BatchSize at a time, and returns how many left (see
// [serve.Bind]). When the kernel takes part of a batch, the rest is offered again
// from the first message it did not take. A full send buffer (EAGAIN, ENOBUFS) is
// retried whenever the poller sees room, for at most sendWait, and once more after
// that, before the datagram is given up as serve.ErrTxQueueFull. EHOSTUNREACH,
// ENETUNREACH and EADDRNOTAVAIL are serve.ErrNoRoute, as is a destination whose
// family the socket does not reach (refused without a system call).
func (b *Bind) SendBatch(pkts []serve.Packet) (int, error) {
	sent := 0
	for sent < len(pkts) {
		k := b.prepare(pkts[sent:])
		if k == 0 {
			return sent, b.noRoute(pkts[sent].Addr)
		}
		err := b.send(k)
		for i := range k {
			b.siov[i].Base = nil // the Bind must not keep the caller's buffers alive
		}
		sent += b.sdone
		switch {
		case err != nil:
			return sent, err // closed (net.ErrClosed)
		case b.serrno != 0:
			return sent, sendError(pkts[sent].Addr, b.name, b.serrno)
		}
	}
	return sent, nil
}

// send offers the k prepared messages until the kernel has taken them all (sdone ==
// k) or refused one (serrno).
func (b *Bind) send(k int) error {
	b.svlen, b.sdone, b.serrno, b.slast = k, 0, 0, false
	err := b.raw.Write(b.sendFn)
	if !b.sdeadset {
		return err
	}
	b.sdeadset = false
	b.c.SetWriteDeadline(time.Time{})
	if err == nil || !isTimeout(err) {
		return err
	}
	// sendWait passed without the kernel taking the datagram. The poller wakes only
	// on an edge, which a queue that drained below a NIC may not raise, so try once
	// more before calling the queue full.
	b.slast = true
	err = b.raw.Write(b.sendFn)
	b.slast = false
	return err
}

// prepare fills the send headers from the first of pkts, up to BatchSize, stopping
// before the first destination the socket cannot reach, and returns how many.
func (b *Bind) prepare(pkts []serve.Packet) int {
	k := min(len(pkts), b.batch)
	for i := range k {
		p := &pkts[i]
		a := p.Addr.Addr()
		if !b.Reaches(a) {
			return i
		}
		sa := &b.ssa[i]
		if b.family == unix.AF_INET {
			sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
			*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
			setPort(&sa4.Port, p.Addr.Port())
		} else {
			// As16 gives an IPv4 destination its IPv4-mapped form, which is how a
			// dual-stack socket sends to IPv4.
			*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
			if z := a.Zone(); z != "" {
				sa.Scope_id = b.szone.index(z)
			}
			setPort(&sa.Port, p.Addr.Port())
		}
		b.siov[i].Base = unsafe.SliceData(p.Buf)
		b.siov[i].SetLen(len(p.Buf))
	}
	return k
}

// sendCallback is the send callback: it offers the prepared messages from sdone on
// until the kernel has taken them all or refuses one. A full send buffer makes it
// return false (except on the last try), so that the poller waits for room and
// calls it again, until a write deadline sendWait after the first refusal.
func (b *Bind) sendCallback(fd uintptr) bool {
	for b.sdone < b.svlen {
		n, errno := sendmmsg(fd, unsafe.Pointer(&b.smsg[b.sdone]), b.svlen-b.sdone)
		if errno == 0 && n <= 0 {
			errno = unix.EAGAIN // no progress and no reason: treat it as no room
		}
		switch {
		case errno == 0:
			b.sdone += n
		case errno == unix.EINTR:
		case (errno == unix.EAGAIN || errno == unix.ENOBUFS) && !b.slast:
			if !b.sdeadset {
				b.sdeadset = true
				b.c.SetWriteDeadline(time.Now().Add(sendWait))
			}
			return false
		default:
			b.serrno = errno
			return true
		}
	}
	return true
}

// sendmmsg is the system call, a variable so that tests can make the kernel take
// part of a batch or report a full queue, which it never does on loopback (the
// loopback device frees a datagram's send buffer space as it passes it on).
var sendmmsg = func(fd uintptr, msgs unsafe.Pointer, vlen int) (int, unix.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(msgs), uintptr(vlen), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), 0
}

// portOf and setPort convert a sockaddr's port, stored in network byte order.
func portOf(p *uint16) uint16 {
	o := (*[2]byte)(unsafe.Pointer(p))
	return uint16(o[0])<<8 | uint16(o[1])
}

func setPort(p *uint16, port uint16) {
	o := (*[2]byte)(unsafe.Pointer(p))
	o[0], o[1] = byte(port>>8), byte(port)
}

// zoneCache remembers the last IPv6 scope id and its zone, so that a stream of
// datagrams from or to one link-local peer neither formats nor looks up the zone
// (and does not allocate) for each datagram.
type zoneCache struct {
	scope uint32
	zone  string
}

// name is the zone for a scope id: the number, as net/serve's busy poll writes it.
func (z *zoneCache) name(scope uint32) string {
	if scope != z.scope || z.zone == "" {
		z.scope, z.zone = scope, strconv.FormatUint(uint64(scope), 10)
	}
	return z.zone
}

// index is the scope id for a zone: a number, or an interface's name ("eth0"), 0
// when no interface has that name (the kernel then refuses a link-local
// destination).
func (z *zoneCache) index(zone string) uint32 {
	if zone == z.zone {
		return z.scope
	}
	var scope uint32
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		scope = uint32(n)
	} else if ifi, err := net.InterfaceByName(zone); err == nil {
		scope = uint32(ifi.Index)
	}
	z.scope, z.zone = scope, zone
	return scope
}

// isTimeout reports whether err says a deadline passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
