package serve

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// DefaultLogWindow is the rate-limit window of EventLog and of the driver's own error
// lines: per kind of line, at most a burst of lines is logged per window and the rest
// are counted and reported (as "suppressed") on the next line of that kind.
const DefaultLogWindow = 10 * time.Second

// rateLimiter decides, per key, whether a log line may be written: at most burst lines
// per window. It is safe for concurrent use; a key's slot is allocated once.
type rateLimiter struct {
	mu     sync.Mutex
	window time.Duration
	slots  map[uint32]*rateSlot
}

type rateSlot struct {
	start      time.Time
	n          int
	suppressed uint64
}

func newRateLimiter(window time.Duration) *rateLimiter {
	if window <= 0 {
		window = DefaultLogWindow
	}
	return &rateLimiter{window: window, slots: make(map[uint32]*rateSlot)}
}

// allow reports whether a line for key may be logged at now and, if so, how many lines
// of that key were suppressed since the last one logged.
func (r *rateLimiter) allow(key uint32, burst int, now time.Time) (ok bool, suppressed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slots[key]
	if s == nil {
		s = &rateSlot{start: now}
		r.slots[key] = s
	}
	if now.Sub(s.start) >= r.window {
		s.start, s.n = now, 0
	}
	if s.n < burst {
		s.n++
		suppressed, s.suppressed = s.suppressed, 0
		return true, suppressed
	}
	s.suppressed++
	return false, 0
}

// drain returns and clears the suppressed counts, in key order.
func (r *rateLimiter) drain() (keys []uint32, counts []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.slots {
		if s.suppressed > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		counts = append(counts, r.slots[k].suppressed)
		r.slots[k].suppressed = 0
	}
	return keys, counts
}

// Bursts of EventLog: a limit that is hit is logged at most once per window (it tends to
// be hit in floods); connection lifecycle events up to lifecycleBurst times.
const (
	limitBurst     = 1
	lifecycleBurst = 10
)

// EventLog logs the engine's events (broker.Config.OnEvent) with slog, rate-limited per
// kind of event (and per limit, for limits hit). Install it with
//
//	cfg.OnEvent = serve.NewEventLog(logger, 0).Event
//
// Limits hit are logged at Warn, at most once per window per limit; refused
// CONNECTs and access denials at Warn, and connects, disconnects, takeovers and wills
// at Info, at most 10 per window per kind; each line names the client and its address. Lines that
// were held back are counted in the "suppressed" attribute of the next line of the
// same kind, and Flush reports the rest.
type EventLog struct {
	log *slog.Logger
	rl  *rateLimiter
	now func() time.Time
}

// NewEventLog returns an EventLog writing to l (nil: slog.Default()) with the given
// rate-limit window (0: DefaultLogWindow).
func NewEventLog(l *slog.Logger, window time.Duration) *EventLog {
	if l == nil {
		l = slog.Default()
	}
	return &EventLog{log: l, rl: newRateLimiter(window), now: time.Now}
}

var eventKindNames = [...]string{
	broker.EventLimit:      "limit",
	broker.EventConnect:    "connect",
	broker.EventDisconnect: "disconnect",
	broker.EventTakeover:   "takeover",
	broker.EventWill:       "will",
	broker.EventRefused:    "refused",
	broker.EventDenied:     "denied",
}

func eventKindName(k broker.EventKind) string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "event"
}

func eventKey(e broker.Event) uint32 {
	k := uint32(e.Kind) << 8
	if e.Kind == broker.EventLimit {
		k |= uint32(e.Limit)
	}
	return k
}

// Event logs e, unless its kind is over its rate. It is safe for concurrent use.
func (el *EventLog) Event(e broker.Event) {
	burst, level := lifecycleBurst, slog.LevelInfo
	switch e.Kind {
	case broker.EventLimit:
		burst, level = limitBurst, slog.LevelWarn
	case broker.EventRefused, broker.EventDenied:
		level = slog.LevelWarn
	}
	if !el.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := el.rl.allow(eventKey(e), burst, el.now())
	if !ok {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	msg := "client " + eventKindName(e.Kind)
	if e.Kind == broker.EventLimit {
		msg = "limit reached"
		attrs = append(attrs, slog.String("limit", e.Limit.String()))
	}
	if e.ClientID != "" {
		attrs = append(attrs, slog.String("client", e.ClientID))
	}
	if e.Addr.IsValid() {
		attrs = append(attrs, slog.String("addr", e.Addr.String()))
	}
	if e.Kind == broker.EventDisconnect {
		attrs = append(attrs, slog.String("state", e.State.String()))
	}
	if e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	el.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// Flush logs how many lines of each kind are still held back, so a shutdown does not
// lose them silently.
func (el *EventLog) Flush() {
	keys, counts := el.rl.drain()
	for i, k := range keys {
		kind := broker.EventKind(k >> 8)
		attrs := []slog.Attr{slog.String("kind", eventKindName(kind)), slog.Uint64("suppressed", counts[i])}
		if kind == broker.EventLimit {
			attrs = append(attrs, slog.String("limit", broker.Limit(k&0xff).String()))
		}
		el.log.LogAttrs(context.Background(), slog.LevelInfo, "suppressed event lines", attrs...)
	}
}
