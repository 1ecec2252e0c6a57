package kernel

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// Reloading a running broker (Config.Reload; the daemon sends one on SIGHUP, as
// Mosquitto reloads). The engine's sessions stay as they are: only what the kernel
// owns while serving changes live. Every other key is logged as needing a restart.

// LiveKeys are the configuration keys a reload applies while serving, without a
// restart and without touching a session: access control, the log level and the $SYS
// interval. docs/config.md lists them too.
var LiveKeys = []string{"allow_network", "allow_client", "allow", "deny", "log_level", "sys_interval"}

// live is the part of a Config a reload hands to the engine's loop.
type live struct {
	access      broker.Access
	sysInterval time.Duration
}

// reloadSlot passes the latest live settings from the goroutine that reads
// Config.Reload to the engine's loop, which takes them in Tick.
type reloadSlot struct {
	mu      sync.Mutex
	pending *live
}

func (s *reloadSlot) put(l *live) {
	s.mu.Lock()
	s.pending = l
	s.mu.Unlock()
}

func (s *reloadSlot) take() *live {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	l := s.pending
	s.pending = nil
	s.mu.Unlock()
	return l
}

// ReloadReport says what a reload changed: Applied the live keys whose value changed,
// Restart the keys that changed but keep their old value until a restart.
type ReloadReport struct {
	Applied, Restart []string
}

// diffConfig compares two configurations key by key, in the file format (Format),
// and sorts the keys that differ into live and restart-only ones.
func diffConfig(old, next Config) ReloadReport {
	a, b := keyLines(Format(old)), keyLines(Format(next))
	var r ReloadReport
	for _, k := range Keys() {
		if slices.Equal(a[k], b[k]) {
			continue
		}
		if slices.Contains(LiveKeys, k) {
			r.Applied = append(r.Applied, k)
		} else {
			r.Restart = append(r.Restart, k)
		}
	}
	return r
}

// keyLines groups formatted configuration lines by key.
func keyLines(text []byte) map[string][]string {
	m := map[string][]string{}
	for _, line := range bytes.Split(text, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		k, _, _ := strings.Cut(s, " ")
		m[k] = append(m[k], s)
	}
	return m
}

// withLive returns cur with next's live settings: the configuration now in force.
func withLive(cur, next Config) Config {
	cur.Broker.Access = next.Broker.Access
	cur.LogLevel = next.LogLevel
	cur.SysInterval = next.SysInterval
	return cur
}

// liveOf extracts the live settings of cfg.
func liveOf(cfg Config) *live {
	l := &live{sysInterval: cfg.SysInterval}
	if a := cfg.Broker.Access; a != nil {
		l.access = *a
	}
	return l
}

// watchReloads applies each configuration received on ch until it is closed or done
// is: the live keys go to the engine through slot (wake makes the loop take them),
// the log level to level, and one line is logged either way.
func watchReloads(ch <-chan Config, done <-chan struct{}, cur Config, level *slog.LevelVar, slot *reloadSlot, wake func(), logger *slog.Logger) {
	for {
		var next Config
		var ok bool
		select {
		case <-done:
			return
		case next, ok = <-ch:
			if !ok {
				return
			}
		}
		if err := next.Broker.Validate(); err != nil {
			logger.Error("configuration reload refused; keeping the current configuration", "err", err)
			continue
		}
		r := diffConfig(cur, next)
		if level == nil && slices.Contains(r.Applied, "log_level") {
			r.Applied = slices.DeleteFunc(r.Applied, func(k string) bool { return k == "log_level" })
			r.Restart = append(r.Restart, "log_level")
			next.LogLevel = cur.LogLevel
		}
		cur = withLive(cur, next)
		if level != nil {
			level.Set(next.LogLevel)
		}
		slot.put(liveOf(next))
		wake()
		attrs := []any{"applied", strings.Join(r.Applied, ",")}
		if len(r.Applied) == 0 {
			attrs[1] = "nothing changed"
		}
		logger.Info("configuration reloaded", attrs...)
		if len(r.Restart) > 0 {
			logger.Warn("configuration reload: these keys keep their old value until a restart", "keys", strings.Join(r.Restart, ","))
		}
	}
}
