package broker

import (
	"fmt"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/broker/topic"
)

// refused reports a refused CONNECT: who, from where, and why.
func (b *Broker) refused(r *request, p *packet.Packet, why string) {
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(Event{Kind: EventRefused, ClientID: string(p.ClientID), Addr: r.from.addr, Detail: why})
	}
}

// denied reports a publish or subscribe an access rule refused.
func (b *Broker) denied(s *session, what string) {
	if b.cfg.OnEvent != nil {
		b.cfg.OnEvent(Event{Kind: EventDenied, ClientID: s.clientID, Addr: s.peer.addr, Detail: what})
	}
}

// handleConnect: CONNECT (6.3), with the will exchange when the Will flag is set, clean
// and persistent sessions (6.6), and takeover of a session from another address.
func (b *Broker) handleConnect(r *request, cur *session, out []Datagram) []Datagram {
	p := r.p
	switch {
	case p.ProtocolID != packet.ProtocolID:
		b.refused(r, p, fmt.Sprintf("protocol id %#02x (MQTT-SN v1.2 is 0x01)", p.ProtocolID))
		return b.connack(out, &r.from, packet.NotSupported, r.mark)
	case len(p.ClientID) == 0:
		b.refused(r, p, "empty client id")
		return b.connack(out, &r.from, packet.NotSupported, r.mark)
	case len(p.ClientID) > b.cfg.MaxClientIDLen:
		b.refused(r, p, fmt.Sprintf("client id of %d octets (max_client_id_length %d)", len(p.ClientID), b.cfg.MaxClientIDLen))
		return b.connack(out, &r.from, packet.NotSupported, r.mark)
	}
	if !b.cfg.Access.addrAllowed(r.from.addr) || !b.cfg.Access.clientAllowed(string(p.ClientID)) {
		b.c.drops[DropDenied].Add(1)
		b.refused(r, p, "denied by the access rules")
		return b.connack(out, &r.from, packet.NotSupported, r.mark)
	}
	s := b.byClientID[string(p.ClientID)]
	if rc, ok := b.admitConnect(r, cur, s); !ok {
		return b.connack(out, &r.from, rc, r.mark)
	}
	if s == nil {
		if b.live >= b.cfg.MaxClients {
			b.limitHit(LimitClients, string(p.ClientID))
			return b.connack(out, &r.from, packet.Congestion, r.mark)
		}
		s = b.newSession(string(p.ClientID))
	} else if s.bound && s.peer.key() != r.from.key() {
		if b.cfg.RequireSameAddress {
			b.c.drops[DropDenied].Add(1)
			b.refused(r, p, "session bound to "+s.peer.addr.String()+" (require_same_address)")
			return b.connack(out, &r.from, packet.NotSupported, r.mark)
		}
		b.c.takeovers.Add(1)
		b.event(Event{Kind: EventTakeover, ClientID: s.clientID, Addr: r.from.addr, State: s.state, Detail: "from " + s.peer.addr.String()})
	}
	defer b.scheduleIfLive(s)
	b.dropHeld(s) // a new connection: what the old one had held was never acknowledged
	if cur != nil && cur != s {
		// Another client id was connected from this address: that connection is gone
		// without a DISCONNECT, so it is lost (and its will published).
		out = b.lose(cur, r.now, out)
	}
	b.bind(s, r.from)
	if cur != s {
		s.rxBytes += uint64(r.size) // Receive counted it for the session it found
	}
	s.lastHeard = r.now
	s.keepAlive = time.Duration(p.Duration) * time.Second
	if s.keepAlive == 0 || s.keepAlive > b.cfg.MaxKeepAlive {
		// No keep-alive, or a longer one than the broker grants: max_keepalive, so a
		// slot held by silence comes back (docs/config.md).
		s.keepAlive = b.cfg.MaxKeepAlive
	}
	wasClean := s.clean
	s.clean = p.Flags.CleanSession()
	if s.clean {
		b.wipe(s)
		b.journalSessionDel(s)
	} else {
		// A resumed session resends what was unacknowledged, with DUP.
		b.requeueInflight(s)
		s.reg = nil
		if wasClean {
			// A clean session's client asks to keep it: what it is owed is owed to a
			// persistent session from now on.
			for _, m := range s.out.queue {
				b.journalMsg(s, m, m.msgID, m.awaiting)
			}
		}
	}
	b.setState(s, StateDisconnected)
	b.dirty(s) // no longer asleep, or persistent from now on (even if its will exchange is abandoned)
	if p.Flags.Will() {
		b.setPhase(s, phaseWillTopic)
		s.pendingWill = will{}
		s.phaseUntil = r.now.Add(b.cfg.ConnectTimeout)
		b.reply(packet.WILLTOPICREQ)
		return b.emitTo(out, s, r.mark)
	}
	return b.completeConnect(s, r, out)
}

// admitConnect applies the per-address and will-exchange limits to a CONNECT from r
// (cur: the session at its address, s: the session of its client id, if any).
func (b *Broker) admitConnect(r *request, cur, s *session) (packet.ReturnCode, bool) {
	ip := r.from.addr.Addr().Unmap()
	n := b.perAddr[ip]
	if cur != nil && cur != s {
		n-- // lost by this CONNECT
	}
	if s != nil && s.bound && s.peer.addr.Addr().Unmap() == ip {
		n-- // already counted here
	}
	if n >= b.cfg.MaxClientsPerAddress {
		b.limitHit(LimitClientsPerAddress, string(r.p.ClientID))
		return packet.Congestion, false
	}
	if r.p.Flags.Will() && b.connecting >= b.cfg.MaxConnecting && (s == nil || s.phase == phaseNone) {
		b.limitHit(LimitConnecting, string(r.p.ClientID))
		return packet.Congestion, false
	}
	return packet.Accepted, true
}

func (b *Broker) completeConnect(s *session, r *request, out []Datagram) []Datagram {
	b.setPhase(s, phaseNone)
	b.setState(s, StateActive)
	b.dirty(s)
	b.event(Event{Kind: EventConnect, ClientID: s.clientID, Addr: s.peer.addr, State: StateActive})
	out = b.connackTo(out, s, packet.Accepted, r.mark)
	return b.pump(s, r.now, out)
}

func (b *Broker) connack(out []Datagram, to *peer, rc packet.ReturnCode, mark uint64) []Datagram {
	b.reply(packet.CONNACK).ReturnCode = rc
	return b.emit(out, to, mark)
}

// connackTo answers a session's CONNECT, counting the CONNACK against its budget.
func (b *Broker) connackTo(out []Datagram, s *session, rc packet.ReturnCode, mark uint64) []Datagram {
	b.reply(packet.CONNACK).ReturnCode = rc
	return b.emitTo(out, s, mark)
}

// handleWillTopic: WILLTOPIC during the will exchange. An empty WILLTOPIC means "no
// will" and completes the CONNECT at once.
func (b *Broker) handleWillTopic(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || s.phase == phaseNone {
		b.c.drops[DropBadState].Add(1)
		return out
	}
	p := r.p
	if len(p.WillTopic) == 0 {
		s.will = will{}
		return b.completeConnect(s, r, out)
	}
	if topic.ValidateName(string(p.WillTopic)) != nil || !b.topicFits(string(p.WillTopic)) {
		// The CONNECT failed: end it as an abandoned will exchange ends (runTimers).
		b.setPhase(s, phaseNone)
		s.pendingWill = will{}
		out = b.connackTo(out, s, packet.NotSupported, r.mark)
		if s.clean {
			b.deleteSession(s)
		} else {
			b.unbind(s)
		}
		return out
	}
	s.pendingWill = will{set: true, topic: string(p.WillTopic), qos: p.Flags.QoS(), retain: p.Flags.Retain()}
	// In phaseWillMsg this is a retransmission (our WILLMSGREQ was lost): ask again.
	b.setPhase(s, phaseWillMsg)
	b.reply(packet.WILLMSGREQ)
	return b.emitTo(out, s, r.mark)
}

func (b *Broker) handleWillMsg(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || s.phase != phaseWillMsg {
		if s != nil && s.connected() {
			// A retransmitted WILLMSG after our CONNACK was lost: CONNACK again.
			return b.connackTo(out, s, packet.Accepted, r.mark)
		}
		b.c.drops[DropBadState].Add(1)
		return out
	}
	s.pendingWill.msg = append([]byte(nil), r.p.WillMsg...)
	s.will = s.pendingWill
	s.pendingWill = will{}
	return b.completeConnect(s, r, out)
}

// handleWillTopicUpdate: WILLTOPICUPD (6.4); empty deletes the will.
func (b *Broker) handleWillTopicUpdate(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	p := r.p
	rc := packet.Accepted
	switch {
	case len(p.WillTopic) == 0:
		s.will = will{}
	case topic.ValidateName(string(p.WillTopic)) != nil || !b.topicFits(string(p.WillTopic)):
		rc = packet.NotSupported
	case !b.recordRoom(s, len(p.WillTopic)-len(s.will.topic)):
		b.limitHit(LimitSessionBytes, s.clientID)
		rc = packet.Congestion
	default:
		s.will.set = true
		s.will.topic = string(p.WillTopic)
		s.will.qos, s.will.retain = p.Flags.QoS(), p.Flags.Retain()
	}
	b.dirty(s)
	b.reply(packet.WILLTOPICRESP).ReturnCode = rc
	return b.emitTo(out, s, r.mark)
}

// handleWillMsgUpdate: WILLMSGUPD (6.4).
func (b *Broker) handleWillMsgUpdate(r *request, s *session, out []Datagram) []Datagram {
	if s == nil || !s.connected() {
		return b.noSession(r, out)
	}
	rc := packet.Accepted
	if b.recordRoom(s, len(r.p.WillMsg)-len(s.will.msg)) {
		s.will.set = true
		s.will.msg = append(s.will.msg[:0], r.p.WillMsg...)
		b.dirty(s)
	} else {
		b.limitHit(LimitSessionBytes, s.clientID)
		rc = packet.Congestion
	}
	b.reply(packet.WILLMSGRESP).ReturnCode = rc
	return b.emitTo(out, s, r.mark)
}

// handleDisconnect: without Duration the session ends normally (no will); with one the
// client goes to sleep and its messages are buffered (6.14).
func (b *Broker) handleDisconnect(r *request, s *session, out []Datagram) []Datagram {
	if s == nil {
		b.c.drops[DropNoSession].Add(1)
		b.reply(packet.DISCONNECT)
		return b.emit(out, &r.from, r.mark)
	}
	p := r.p
	b.dropHeld(s)
	b.heldWake = true // as a sleeper or away, it no longer makes publishers wait
	if p.HasDuration && p.Duration > 0 && s.phase == phaseNone {
		s.sleepFor = time.Duration(p.Duration) * time.Second
		s.sleepUntil = r.now.Add(grace(s.sleepFor))
		b.setState(s, StateAsleep)
		b.dirty(s)
		b.event(Event{Kind: EventDisconnect, ClientID: s.clientID, Addr: s.peer.addr, State: StateAsleep})
		b.reply(packet.DISCONNECT)
		return b.emitTo(out, s, r.mark)
	}
	b.reply(packet.DISCONNECT)
	out = b.emitTo(out, s, r.mark)
	b.event(Event{Kind: EventDisconnect, ClientID: s.clientID, Addr: s.peer.addr, State: StateDisconnected})
	if s.clean {
		b.deleteSession(s)
		return out
	}
	b.requeueInflight(s)
	s.reg = nil
	b.setPhase(s, phaseNone)
	b.unbind(s)
	b.setState(s, StateDisconnected)
	b.dirty(s)
	return out
}

// handlePingreq: keep-alive, and with a ClientId the wake-up of a sleeping client whose
// buffered messages are then flushed before PINGRESP (6.14).
func (b *Broker) handlePingreq(r *request, s *session, out []Datagram) []Datagram {
	p := r.p
	if len(p.ClientID) > 0 {
		named := b.byClientID[string(p.ClientID)]
		if named == nil {
			return b.noSession(r, out)
		}
		if named.state == StateAsleep || named.state == StateAwake {
			if named.bound && named.peer.key() != r.from.key() {
				if b.cfg.RequireSameAddress {
					b.c.drops[DropDenied].Add(1)
					return out
				}
				if s != nil && s != named {
					out = b.lose(s, r.now, out)
				}
			}
			if named != s {
				b.bind(named, r.from)
				named.rxBytes += uint64(r.size)
			}
			named.lastHeard = r.now
			b.setState(named, StateAwake)
			// Resend what was in flight when the client fell asleep, then the rest.
			for i := range named.out.inflight {
				out = b.retransmit(named, &named.out.inflight[i], r.now, out)
			}
			out = b.pump(named, r.now, out)
			b.scheduleIfLive(named)
			return out
		}
		s = named
		if !s.bound || s.peer.key() != r.from.key() {
			return b.noSession(r, out)
		}
	}
	if s == nil || s.phase != phaseNone || (s.state != StateActive && s.state != StateAwake && s.state != StateAsleep) {
		return b.noSession(r, out)
	}
	if s.state == StateAsleep {
		// A sleeping client pinging without its ClientId: wake it all the same.
		b.setState(s, StateAwake)
		return b.pump(s, r.now, out)
	}
	b.reply(packet.PINGRESP)
	return b.emitTo(out, s, r.mark)
}

// noSession answers a message that needs a session from a sender that has none with
// DISCONNECT (2 octets, never larger than what provoked it), which tells a client that
// survived a broker restart or its own loss to connect again.
func (b *Broker) noSession(r *request, out []Datagram) []Datagram {
	b.c.drops[DropNoSession].Add(1)
	b.reply(packet.DISCONNECT)
	return b.emit(out, &r.from, r.mark)
}

// handleSearchGW answers SEARCHGW with GWINFO, unicast to the searcher: a unicast
// datagram never triggers a broadcast, so the broker cannot be used as an amplifier.
func (b *Broker) handleSearchGW(r *request, out []Datagram) []Datagram {
	b.reply(packet.GWINFO).GwID = b.cfg.GatewayID
	return b.emit(out, &r.from, r.mark)
}

func (b *Broker) advertise(now time.Time, out []Datagram) []Datagram {
	b.nextAdvertise = now.Add(b.cfg.AdvertiseInterval)
	q := b.reply(packet.ADVERTISE)
	q.GwID, q.Duration = b.cfg.GatewayID, uint16(b.cfg.AdvertiseInterval/time.Second)
	b.c.broadcasts.Add(1)
	return b.emit(out, &peer{}, 0)
}
