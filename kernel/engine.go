package kernel

import (
	"strconv"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/latency"
)

// engine is the broker as the driver sees it, with what the kernel adds around the
// protocol: the start of each datagram's latency trace, and the $SYS topics, which
// are published from the engine's own timer so they need no lock and no second
// goroutine touching the engine.
type engine struct {
	*broker.Broker
	m        *Metrics
	sysEvery time.Duration // 0: no $SYS topics
	nextSys  time.Time
	version  string
	last     map[string]string // the value each $SYS topic was last published with
	payload  []byte
	inbound  *inboundQueue // messages from the Upstream; nil without one
	logDrop  func(topic string, err error)
	access   *broker.Access // the engine's own (Config.Broker.Access), changed in place by a reload
	reload   *reloadSlot    // nil without Config.Reload
}

func (e *engine) Receive(now time.Time, in broker.Datagram, out []broker.Datagram) []broker.Datagram {
	e.m.received(in.Mark)
	return e.Broker.Receive(now, in, out)
}

func (e *engine) Tick(now time.Time, out []broker.Datagram) []broker.Datagram {
	if l := e.reload.take(); l != nil {
		e.applyLive(now, l)
	}
	out = e.Broker.Tick(now, out)
	if e.inbound != nil {
		if batch := e.inbound.take(); batch != nil {
			for i := range batch {
				m := &batch[i]
				var err error
				if out, err = e.Broker.Inject(now, m.topic, m.payload, m.qos, m.retain, out); err != nil {
					e.logDrop(m.topic, err)
				}
			}
			e.inbound.give(batch)
		}
	}
	if e.sysEvery > 0 && !now.Before(e.nextSys) {
		out = e.publishSys(now, out)
		e.nextSys = now.Add(e.sysEvery)
	}
	return out
}

// applyLive puts a reload's live settings in force, between two engine calls: the
// broker reads its access rules through e.access on every CONNECT, PUBLISH and
// SUBSCRIBE, so the next one meets the new rules; sessions are left as they are.
func (e *engine) applyLive(now time.Time, l *live) {
	*e.access = l.access
	if l.sysInterval != e.sysEvery {
		if e.sysEvery == 0 || now.Add(l.sysInterval).Before(e.nextSys) {
			e.nextSys = now
		}
		e.sysEvery = l.sysInterval
	}
}

func (e *engine) Deadline() time.Time {
	d := e.Broker.Deadline()
	if e.sysEvery > 0 && (d.IsZero() || e.nextSys.Before(d)) {
		return e.nextSys
	}
	return d
}

// publishSys publishes the $SYS topics whose value changed, retained at QoS 0, as
// Mosquitto does: a subscriber to $SYS/# gets the current values at once and then
// the changes. Names follow Mosquitto's where the number means the same. They are
// retained in memory only: the broker never journals a retained `$SYS/` message
// (broker/persist.go), so an idle broker does not write its state file and a restart
// brings no stale value back.
func (e *engine) publishSys(now time.Time, out []broker.Datagram) []broker.Datagram {
	s := e.m.Stats()
	connected := s.ClientsByState[broker.StateActive] + s.ClientsByState[broker.StateAwake]
	var total int64
	for _, n := range s.ClientsByState {
		total += n
	}
	var in uint64
	for i := range s.InByType {
		in += s.InByType[i]
	}
	// Sent is what the network took, not what the engine encoded: a datagram the
	// socket or NIC refused is counted in "not sent" instead.
	ss := e.m.ServerStats()
	sent := ss.Sent
	e2e := e.m.tracer.EndToEnd().Snapshot()
	values := []struct {
		topic string
		value string
	}{
		{"$SYS/broker/version", e.version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(e.m.Uptime()/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", itoa(connected)},
		{"$SYS/broker/clients/active", itoa(s.ClientsByState[broker.StateActive])},
		{"$SYS/broker/clients/asleep", itoa(s.ClientsByState[broker.StateAsleep])},
		{"$SYS/broker/clients/awake", itoa(s.ClientsByState[broker.StateAwake])},
		{"$SYS/broker/clients/disconnected", itoa(s.ClientsByState[broker.StateDisconnected] + s.ClientsByState[broker.StateLost])},
		{"$SYS/broker/clients/total", itoa(total)},
		{"$SYS/broker/messages/received", utoa(in)},
		{"$SYS/broker/messages/sent", utoa(sent)},
		{"$SYS/broker/messages/inflight", itoa(s.Inflight)},
		{"$SYS/broker/messages/dropped", utoa(s.TotalDrops() + ss.WriteErrors)},
		{"$SYS/broker/messages/not sent", utoa(ss.WriteErrors)},
		{"$SYS/broker/publish/messages/received", utoa(s.PublishesIn)},
		{"$SYS/broker/publish/messages/sent", utoa(s.Deliveries)},
		{"$SYS/broker/bytes/received", utoa(s.BytesIn)},
		{"$SYS/broker/bytes/sent", utoa(s.BytesOut)},
		{"$SYS/broker/subscriptions/count", itoa(s.Subscriptions)},
		{"$SYS/broker/retained messages/count", itoa(s.Retained)},
		{"$SYS/broker/topics/count", itoa(s.Topics)},
		{"$SYS/broker/topics/freed", utoa(s.TopicsFreed)},
		{"$SYS/broker/store/sleep buffered", itoa(s.SleepBuffered)},
		{"$SYS/broker/publish/messages/held", itoa(s.Held)},
		{"$SYS/broker/latency/end_to_end/count", utoa(e2e.Count())},
		{"$SYS/broker/latency/end_to_end/p50_us", micros(&e2e, 0.5)},
		{"$SYS/broker/latency/end_to_end/p99_us", micros(&e2e, 0.99)},
		{"$SYS/broker/latency/end_to_end/max_us", micros(&e2e, 1)},
	}
	if e.m.upstream != nil {
		u := e.m.upstream.Stats()
		connected := "0"
		if u.Connected {
			connected = "1"
		}
		values = append(values, []struct {
			topic string
			value string
		}{
			{"$SYS/broker/bridge/connected", connected},
			{"$SYS/broker/bridge/queued", itoa(int64(u.Queued))},
			{"$SYS/broker/bridge/forwarded", utoa(u.Forwarded)},
			{"$SYS/broker/bridge/delivered", utoa(u.Delivered)},
			{"$SYS/broker/bridge/dropped", utoa(u.DroppedQueue + u.DroppedLocal)},
		}...)
	}
	for _, v := range values {
		if prev, ok := e.last[v.topic]; ok && prev == v.value {
			continue
		}
		e.last[v.topic] = v.value
		e.payload = append(e.payload[:0], v.value...)
		var err error
		out, err = e.Broker.Inject(now, v.topic, e.payload, 0, true, out)
		if err != nil {
			// Only a bad topic name fails, and these are constants: a bug, shown once.
			panic("kernel: $SYS topic " + v.topic + ": " + err.Error())
		}
	}
	return out
}

func itoa(v int64) string  { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

// micros is quantile q of s in microseconds with one decimal, "0" when empty.
func micros(s *latency.HistSnapshot, q float64) string {
	if s.Count() == 0 {
		return "0"
	}
	var ns uint64
	if q >= 1 {
		ns = s.Max()
	} else {
		ns = s.Quantile(q)
	}
	return strconv.FormatFloat(float64(ns)/1e3, 'f', 1, 64)
}
