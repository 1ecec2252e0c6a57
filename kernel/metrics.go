package kernel

import (
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
	"github.com/musqratt/musqratt/latency"
	"github.com/musqratt/musqratt/net/bridge"
	"github.com/musqratt/musqratt/net/serve"
)

// Metrics is a running broker's numbers in one place: the engine's counters and
// gauges, the driver's, the process's memory, and the latency histograms (end to end
// and per stage). Every rendering reads it — the text dump on the serial console, on
// SIGUSR1 and from `musqratt stats`, the Prometheus endpoint, the status page and the
// $SYS topics — so they never disagree. Its methods are safe from any goroutine.
type Metrics struct {
	engine  *broker.Broker
	server  *serve.Server
	clock   latency.Clock
	tracer  *latency.Tracer
	started time.Time
	board   string

	// upstream, if the bridge reports its numbers (net/bridge does), adds them.
	upstream interface{ Stats() bridge.Stats }

	// extra appends the numbers below the loop (Config.ExtraMetrics), if set.
	extra func(dst []latency.Metric) []latency.Metric

	// stamps are the stage stamps of the datagram the engine is handling; engine
	// goroutine only (Receive, the Trace hook and Observe all run there).
	stamps [latency.NumStages]uint64

	// resetAt holds the counters' values at the last Reset, so "reset counters" on the
	// console does not touch the engine's own (monotonic, as Prometheus wants).
	resetAt atomic.Pointer[baseline]
}

type baseline struct {
	broker broker.Stats
	server serve.Stats
}

func newMetrics(clock latency.Clock, board string) *Metrics {
	return &Metrics{clock: clock, tracer: latency.NewTracer(clock), started: time.Now(), board: board}
}

// trace is the engine's Trace hook: it stamps the stage the PUBLISH reached.
func (m *Metrics) trace(s broker.Stage) {
	var st latency.Stage
	switch s {
	case broker.StageDecoded:
		st = latency.Decoded
	case broker.StageMatched:
		st = latency.Matched
	case broker.StageQueued:
		st = latency.Queued
	default:
		return
	}
	m.stamps[st] = m.clock.Now()
}

// received starts a datagram's trace at the driver's receive stamp.
func (m *Metrics) received(mark uint64) {
	m.stamps = [latency.NumStages]uint64{latency.Received: mark}
}

// observe is the driver's Observe hook: every datagram sent records its residence;
// the first one a traced PUBLISH caused also closes the stage intervals.
func (m *Metrics) observe(mark, sent uint64) {
	m.tracer.ObserveEndToEnd(mark, sent)
	st := &m.stamps
	if st[latency.Received] != mark || st[latency.Decoded] == 0 {
		return
	}
	st[latency.Sent] = sent
	for s := latency.Decoded; s < latency.NumStages; s++ {
		if a, b := st[s-1], st[s]; a != 0 && b >= a {
			m.tracer.RecordStage(s, latency.Nanos(m.clock, b-a))
		}
	}
	*st = [latency.NumStages]uint64{}
}

// Stats is the engine's snapshot, less what was counted before the last Reset.
func (m *Metrics) Stats() broker.Stats {
	s := m.engine.Stats()
	if b := m.resetAt.Load(); b != nil {
		subtractCounters(&s, &b.broker)
	}
	return s
}

// Uptime is how long the broker has served.
func (m *Metrics) Uptime() time.Duration { return time.Since(m.started) }

// Reset zeroes the counters as the renderings show them and empties the latency
// histograms; gauges (clients, topics, ...) are current values and stay.
func (m *Metrics) Reset() {
	m.resetAt.Store(&baseline{broker: m.engine.Stats(), server: m.server.Stats()})
	m.tracer.Reset()
}

func subtractCounters(s, b *broker.Stats) {
	for i := range s.InByType {
		s.InByType[i] -= b.InByType[i]
		s.OutByType[i] -= b.OutByType[i]
	}
	s.BytesIn -= b.BytesIn
	s.BytesOut -= b.BytesOut
	for i := range s.MalformedByReason {
		s.MalformedByReason[i] -= b.MalformedByReason[i]
	}
	for i := range s.Drops {
		s.Drops[i] -= b.Drops[i]
	}
	for i := range s.LimitsHit {
		s.LimitsHit[i] -= b.LimitsHit[i]
	}
	s.Retransmissions -= b.Retransmissions
	s.PublishesIn -= b.PublishesIn
	s.Deliveries -= b.Deliveries
	s.WillsPublished -= b.WillsPublished
	s.Takeovers -= b.Takeovers
	s.TopicsFreed -= b.TopicsFreed
	s.Broadcasts -= b.Broadcasts
}

// ServerStats is the driver loop's counters, since the last Reset.
func (m *Metrics) ServerStats() serve.Stats {
	ss := m.server.Stats()
	if b := m.resetAt.Load(); b != nil {
		ss.Received -= b.server.Received
		ss.Sent -= b.server.Sent
		ss.Broadcasts -= b.server.Broadcasts
		ss.Batches -= b.server.Batches
		ss.Oversized -= b.server.Oversized
		ss.ReadErrors -= b.server.ReadErrors
		ss.WriteErrors -= b.server.WriteErrors
		ss.CommitErrors -= b.server.CommitErrors
		for i := range ss.TxDrops {
			ss.TxDrops[i] -= b.server.TxDrops[i]
		}
	}
	return ss
}

// AppendMetrics appends every counter and gauge to dst. Zero per-type and per-reason
// counters are left out, so the dump stays readable; the totals are always there.
func (m *Metrics) AppendMetrics(dst []latency.Metric) []latency.Metric {
	s := m.Stats()
	ss := m.ServerStats()
	gauge := func(name, help string, v float64, labels ...[2]string) {
		dst = append(dst, latency.Metric{Name: name, Help: help, Kind: latency.Gauge, Value: v, Labels: labels})
	}
	counter := func(name, help string, v uint64, labels ...[2]string) {
		dst = append(dst, latency.Metric{Name: name, Help: help, Kind: latency.Counter, Value: float64(v), Labels: labels})
	}
	gauge("uptime_seconds", "Seconds since the broker started.", m.Uptime().Seconds())
	for st := range broker.NumStates {
		gauge("clients", "Client sessions by state.", float64(s.ClientsByState[st]), [2]string{"state", broker.State(st).String()})
	}
	gauge("topics", "Registered topic names.", float64(s.Topics))
	gauge("subscriptions", "Subscriptions of all clients.", float64(s.Subscriptions))
	gauge("retained", "Retained messages stored.", float64(s.Retained))
	gauge("inflight", "QoS 1 and 2 deliveries awaiting acknowledgement.", float64(s.Inflight))
	gauge("queued", "Deliveries queued behind the inflight window.", float64(s.Queued))
	gauge("sleep_buffered", "Messages held for sleeping clients.", float64(s.SleepBuffered))
	gauge("held", "Client publications held unacknowledged until their subscribers have room (back-pressure).", float64(s.Held))

	counter("datagrams_received_total", "Datagrams read from the network and handed to the engine.", ss.Received)
	counter("datagrams_sent_total", "Datagrams written to the network.", ss.Sent)
	counter("bytes_received_total", "Octets of MQTT-SN received.", s.BytesIn)
	counter("bytes_sent_total", "Octets of MQTT-SN sent.", s.BytesOut)
	counter("publishes_received_total", "PUBLISH messages accepted from clients.", s.PublishesIn)
	counter("deliveries_total", "PUBLISH messages sent to subscribers (first transmissions).", s.Deliveries)
	counter("retransmissions_total", "Messages resent with DUP after T_RETRY.", s.Retransmissions)
	counter("wills_published_total", "Wills published for lost clients.", s.WillsPublished)
	counter("topics_freed_total", "Topic ids freed because no session, subscription or retained message used them any more.", s.TopicsFreed)
	counter("takeovers_total", "Sessions taken over by a new connection with the same client id.", s.Takeovers)
	counter("oversized_total", "Datagrams longer than the largest MQTT-SN message, dropped.", ss.Oversized)
	counter("read_errors_total", "Failed socket reads.", ss.ReadErrors)
	counter("write_errors_total", "Datagrams the engine emitted that did not leave (the socket or NIC refused them), all reasons.", ss.WriteErrors)
	counter("receive_batches_total", "Receive batches read from the network (datagrams_received_total / this is the mean batch).", ss.Batches)
	counter("dropped_total", "Datagrams dropped, all reasons: by the engine and, after it, by the network path.", s.TotalDrops()+ss.WriteErrors)
	for _, t := range packet.Types {
		if v := s.InByType[t]; v != 0 {
			counter("messages_received_total", "Messages received by type.", v, [2]string{"type", t.String()})
		}
	}
	for _, t := range packet.Types {
		if v := s.OutByType[t]; v != 0 {
			counter("messages_sent_total", "Messages the engine emitted, by type (a datagram the network then refused is also in not_sent_total).", v, [2]string{"type", t.String()})
		}
	}
	for d := range broker.NumDrops {
		if v := s.Drops[d]; v != 0 {
			counter("dropped_by_reason_total", "Datagrams dropped by reason.", v, [2]string{"reason", d.String()})
		}
	}
	for r := range serve.NumTxReasons {
		if v := ss.TxDrops[r]; v != 0 {
			counter("not_sent_total", "Datagrams the engine emitted that did not leave, by reason.", v, [2]string{"reason", r.String()})
		}
	}
	for r := range packet.NumReasons {
		if v := s.MalformedByReason[r]; v != 0 {
			counter("malformed_total", "Malformed datagrams by what was wrong.", v, [2]string{"reason", packet.Reason(r).String()})
		}
	}
	for l := range broker.NumLimits {
		if v := s.LimitsHit[l]; v != 0 {
			counter("limits_hit_total", "Requests refused by a configured limit.", v, [2]string{"limit", l.String()})
		}
	}
	if m.upstream != nil {
		u := m.upstream.Stats()
		connected := 0.0
		if u.Connected {
			connected = 1
		}
		gauge("bridge_connected", "1 while the upstream bridge is connected.", connected)
		gauge("bridge_queued", "Local publications waiting for the upstream.", float64(u.Queued))
		counter("bridge_forwarded_total", "Local publications published upstream (acknowledged, for QoS 1 and 2).", u.Forwarded)
		counter("bridge_delivered_total", "Messages from upstream handed to the local engine.", u.Delivered)
		counter("bridge_dropped_total", "Messages the bridge dropped: out, the upstream queue was full; in, the engine's queue stayed full.", u.DroppedQueue, [2]string{"direction", "out"})
		counter("bridge_dropped_total", "Messages the bridge dropped: out, the upstream queue was full; in, the engine's queue stayed full.", u.DroppedLocal, [2]string{"direction", "in"})
		counter("bridge_reconnects_total", "Reconnection attempts to the upstream.", u.Reconnects)
	}
	if m.extra != nil {
		dst = m.extra(dst)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge("heap_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc))
	gauge("heap_objects", "Allocated heap objects.", float64(ms.HeapObjects))
	counter("heap_allocs_total", "Heap objects allocated since start (their difference over a run of messages is the allocations per message).", ms.Mallocs)
	gauge("memory_sys_bytes", "Bytes of memory obtained from the system (or the board).", float64(ms.Sys))
	counter("gc_cycles_total", "Completed garbage collections.", uint64(ms.NumGC))
	gauge("goroutines", "Goroutines.", float64(runtime.NumGoroutine()))
	return dst
}

// AppendHistograms appends the latency histograms: end to end, then per stage.
func (m *Metrics) AppendHistograms(dst []latency.NamedHistogram) []latency.NamedHistogram {
	return m.tracer.AppendSnapshots(dst)
}

// Title heads the text dump: the board and the clock the latencies were timed with.
func (m *Metrics) Title() string {
	t := "musqratt"
	if m.board != "" {
		t += " on " + m.board
	}
	return t + ", up " + m.Uptime().Round(time.Second).String() + ", clock " + strconv.FormatUint(m.clock.Freq(), 10) + " Hz"
}

// WriteText writes the plain-text dump (the serial console's format).
func (m *Metrics) WriteText(w io.Writer) error {
	return latency.WriteText(w, m.Title(), m.AppendMetrics(nil), m.AppendHistograms(nil))
}

// WritePrometheus writes the Prometheus text exposition, every name prefixed musqratt_.
func (m *Metrics) WritePrometheus(w io.Writer) error {
	return latency.WritePrometheus(w, "musqratt", m.AppendMetrics(nil), m.AppendHistograms(nil))
}
