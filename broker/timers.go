package broker

import (
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// runTimers handles everything due for s at now: an abandoned will exchange, keep-alive
// or sleep expiry, and retransmission of the broker's own PUBLISH, PUBREL and REGISTER
// (6.13: T_RETRY, N_RETRY, DUP on resend). Exhausted retries mean the client is lost.
func (b *Broker) runTimers(s *session, now time.Time, out []Datagram) []Datagram {
	if s.phase != phaseNone && !now.Before(s.phaseUntil) {
		b.setPhase(s, phaseNone)
		s.pendingWill = will{}
		if s.state == StateDisconnected && s.clean {
			b.deleteSession(s)
			return out
		}
		b.unbind(s)
	}
	switch s.state {
	case StateActive, StateAwake:
		if s.keepAlive > 0 && !now.Before(s.lastHeard.Add(grace(s.keepAlive))) {
			return b.lose(s, now, out)
		}
		if s.state == StateAwake && !now.Before(s.sleepUntil) {
			return b.lose(s, now, out)
		}
		for i := 0; i < len(s.out.inflight); i++ {
			in := &s.out.inflight[i]
			if now.Before(in.deadline) {
				continue
			}
			if in.retries >= b.cfg.MaxRetries {
				return b.lose(s, now, out)
			}
			in.retries++
			out = b.retransmit(s, in, now, out)
		}
		if s.reg != nil && !now.Before(s.reg.deadline) {
			switch {
			case s.reg.retries >= b.cfg.MaxRetries && s.reg.challenge:
				// A client that never answers the address challenge is not lost for
				// it (its keep-alive decides that): it keeps getting what fits its
				// budget, and its next datagram may bring another challenge.
				s.reg = nil
				b.c.drops[DropChallengeUnanswered].Add(1)
			case s.reg.retries >= b.cfg.MaxRetries:
				return b.lose(s, now, out)
			case !b.withinBudget(s, registerLen(b, s.reg.topicID)):
				s.reg.retries++
				s.reg.deadline = now.Add(b.cfg.RetryInterval) // unproven address: stay quiet
			default:
				s.reg.retries++
				b.c.retransmissions.Add(1)
				out = b.sendRegister(s, s.reg.topicID, s.reg.msgID, now, 0, out)
			}
		}
	case StateAsleep:
		if !now.Before(s.sleepUntil) {
			return b.lose(s, now, out)
		}
	}
	return out
}

// retransmit resends an inflight delivery: the stored PUBLISH with DUP set, or PUBREL
// once the client has sent PUBREC.
func (b *Broker) retransmit(s *session, in *inflight, now time.Time, out []Datagram) []Datagram {
	in.deadline = now.Add(b.cfg.RetryInterval)
	if !b.withinBudget(s, len(in.buf)+4) {
		return out // an unproven address gets no more; the retry still counts
	}
	b.c.retransmissions.Add(1)
	if in.awaiting == packet.PUBCOMP {
		return b.sendPubrel(s, in.msgID, in.mark, out)
	}
	in.buf[in.dupAt] |= byte(packet.FlagDUP)
	// The session may have moved (takeover, wake-up from a new address): send to where
	// the client is now, wrapped for its forwarder if it has one.
	start := len(b.arena)
	if s.peer.encap {
		b.arena = packet.AppendEncapsulationHeader(b.arena, s.peer.radius, []byte(s.peer.node))
	}
	b.arena = append(b.arena, in.buf...)
	buf := b.arena[start:len(b.arena):len(b.arena)]
	b.c.out[packet.PUBLISH].Add(1)
	b.c.bytesOut.Add(uint64(len(buf)))
	if !s.validated {
		s.txBytes += uint64(len(buf))
	}
	return append(out, Datagram{Addr: s.peer.addr, B: buf, Mark: in.mark})
}
