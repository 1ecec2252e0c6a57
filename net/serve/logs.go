package serve

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// Rate-limit keys of the driver's own log lines.
const (
	keyRead uint32 = iota
	keyWrite
	keyOversized
	keyUnaddressable
	keyCommit
	numKeys
)

var keyNames = [numKeys]string{"read_error", "write_error", "oversized", "unaddressable", "commit_error"}

// limited logs a line of kind key at level unless over the rate (1 per window).
func (s *Server) limited(key uint32, level slog.Level, msg string, attrs ...slog.Attr) {
	ok, suppressed := s.rl.allow(key, 1, time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func (s *Server) readError(err error) {
	s.readErrors.Add(1)
	s.limited(keyRead, slog.LevelWarn, "read failed", slog.String("err", err.Error()))
}

// writeFailed counts a datagram that did not leave, by reason, and logs it
// (rate-limited): a drop is never silent.
func (s *Server) writeFailed(err error, to netip.AddrPort, reason TxReason) {
	s.writeErrors.Add(1)
	s.txDrops[reason].Add(1)
	s.limited(keyWrite, slog.LevelWarn, "datagram not sent", slog.String("reason", reason.String()),
		slog.String("to", to.String()), slog.String("err", err.Error()))
}

func (s *Server) dropOversized(n int, from netip.AddrPort) {
	s.oversized.Add(1)
	s.limited(keyOversized, slog.LevelWarn, "oversized datagram dropped",
		slog.String("from", from.String()), slog.Int("read", n), slog.Int("max", s.max))
}

func (s *Server) unaddressable() {
	s.readErrors.Add(1)
	s.limited(keyUnaddressable, slog.LevelWarn, "datagram without a usable source address dropped")
}

// flushLog reports lines still held back by the rate limit.
func (s *Server) flushLog() {
	keys, counts := s.rl.drain()
	for i, k := range keys {
		name := "unknown"
		if k < numKeys {
			name = keyNames[k]
		}
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "suppressed log lines",
			slog.String("kind", name), slog.Uint64("suppressed", counts[i]))
	}
}
