package kernel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/latency"
	"github.com/musqratt/musqratt/net/bridge"
	"github.com/musqratt/musqratt/net/serve"
)

// Run serves cfg over conn until ctx is cancelled (it then returns nil) or conn fails.
// It builds the broker engine from cfg.Broker, logs its events to logger (nil:
// slog.Default()), and drives it with net/serve. The caller owns conn and closes it
// after Run returns.
func Run(ctx context.Context, cfg Config, conn net.PacketConn, logger *slog.Logger) error {
	return RunConns(ctx, cfg, []net.PacketConn{conn}, logger)
}

// RunConns is Run over several connections (one per listen address): one engine
// serves them all, and replies leave by the connection the client was heard on.
func RunConns(ctx context.Context, cfg Config, conns []net.PacketConn, logger *slog.Logger) error {
	binds := make([]serve.Bind, len(conns))
	for i, c := range conns {
		binds[i] = serve.PacketConnBind(c)
	}
	return RunBinds(ctx, cfg, binds, logger)
}

// RunBinds is Run over the batched datagram seam: net/udp's sockets hosted, gVisor's
// UDP endpoint on the image. The caller owns the Binds and closes them after it
// returns.
func RunBinds(ctx context.Context, cfg Config, binds []serve.Bind, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	if len(binds) == 0 {
		return fmt.Errorf("kernel: no connection to serve")
	}
	events := serve.NewEventLog(logger, 0)
	bc := cfg.Broker
	if next := bc.OnEvent; next != nil {
		bc.OnEvent = func(e broker.Event) { events.Event(e); next(e) }
	} else {
		bc.OnEvent = events.Event
	}
	if bc.Seed == 0 {
		bc.Seed = randomSeed()
	}
	if len(cfg.Broadcast) == 0 && bc.AdvertiseInterval >= 0 {
		// broadcast none: there is nowhere to send ADVERTISE, so the engine makes
		// none (rather than encoding one the loop cannot send and counting it sent).
		// SEARCHGW is still answered: GWINFO goes to the searcher.
		bc.AdvertiseInterval = -1
	}
	clock := cfg.Clock
	if clock == nil {
		clock = latency.Monotonic()
	}
	m := newMetrics(clock, cfg.Board)
	m.extra = cfg.ExtraMetrics
	if next := bc.Trace; next != nil {
		bc.Trace = func(s broker.Stage) { m.trace(s); next(s) }
	} else {
		bc.Trace = m.trace
	}
	observe := m.observe
	if next := cfg.Observe; next != nil {
		observe = func(mark, sent uint64) { m.observe(mark, sent); next(mark, sent) }
	}
	if cfg.Upstream == nil && cfg.Bridge.Enabled() {
		br, err := bridge.New(cfg.Bridge, logger)
		if err != nil {
			return fmt.Errorf("kernel: %w", err)
		}
		cfg.Upstream = br
	}
	if up := cfg.Upstream; up != nil {
		next := bc.OnPublish
		bc.OnPublish = func(topic string, payload []byte, qos int8, retain bool, origin broker.Origin) {
			if origin != broker.OriginLocal {
				up.Forward(topic, payload, qos, retain)
			}
			if next != nil {
				next(topic, payload, qos, retain, origin)
			}
		}
	}
	// The engine gets an Access of its own, never nil, so a reload can change the rules
	// in place (an empty Access allows everything, as nil does).
	access := &broker.Access{}
	if bc.Access != nil {
		*access = *bc.Access
	}
	bc.Access = access
	p := cfg.Persistence
	bc.Persist = p != nil
	b, err := broker.New(bc)
	if err != nil {
		return fmt.Errorf("kernel: broker configuration: %w", err)
	}
	opts := serve.Options{
		Broadcast: cfg.Broadcast,
		Clock:     clock,
		Observe:   observe,
		Logger:    logger,
		BusyPoll:  cfg.BusyPoll,
	}
	switch {
	case p != nil:
		if err := p.Restore(b, time.Now()); err != nil {
			return fmt.Errorf("kernel: restoring state: %w", err)
		}
		opts.Commit = func(now time.Time) error { return p.Commit(b, now) }
		opts.CommitDeadline = p.Deadline
	case cfg.StateFile != "":
		logger.Warn("state_file is not supported by this build; state is kept in memory", "state_file", cfg.StateFile)
	}
	eng := &engine{Broker: b, m: m, sysEvery: cfg.SysInterval, nextSys: time.Now(), version: strings.TrimSpace("musqratt " + cfg.Version), last: map[string]string{}, access: access}
	srv := serve.NewBind(eng, opts, binds...)
	if cfg.Reload != nil {
		eng.reload = &reloadSlot{}
		stopReloads := make(chan struct{})
		defer close(stopReloads)
		go watchReloads(cfg.Reload, stopReloads, cfg, cfg.Level, eng.reload, srv.Wake, logger)
	}
	m.engine, m.server = b, srv
	if st, ok := cfg.Upstream.(interface{ Stats() bridge.Stats }); ok {
		m.upstream = st
	}
	var upstreamDone chan struct{}
	if up := cfg.Upstream; up != nil {
		q := &inboundQueue{max: cfg.UpstreamQueue, wake: srv.Wake}
		if q.max <= 0 {
			q.max = DefaultUpstreamQueue
		}
		eng.inbound = q
		eng.logDrop = func(topic string, err error) {
			logger.Warn("message from upstream not delivered", "topic", topic, "err", err)
		}
		upCtx, cancelUp := context.WithCancel(ctx)
		defer cancelUp()
		upstreamDone = make(chan struct{})
		go func() {
			defer close(upstreamDone)
			if err := up.Run(upCtx, q.deliver); err != nil && upCtx.Err() == nil {
				logger.Error("upstream bridge stopped", "err", err)
			}
		}()
		defer func() {
			cancelUp()
			<-upstreamDone
		}()
	}

	// UDP sockets under "listen"; anything else (serial lines: "DEVICE ADDR") under
	// "serial", so that "listen" stays a list of addresses.
	var addrs, lines []string
	for _, b := range binds {
		if _, err := netip.ParseAddrPort(b.String()); err == nil {
			addrs = append(addrs, b.String())
		} else {
			lines = append(lines, b.String())
		}
	}
	bcast := make([]string, len(cfg.Broadcast))
	for i, a := range cfg.Broadcast {
		bcast[i] = a.String()
	}
	gwID := bc.GatewayID
	if gwID == 0 {
		gwID = broker.Defaults().GatewayID
	}
	attrs := []any{"listen", strings.Join(addrs, ","), "gateway_id", gwID}
	if len(lines) > 0 {
		attrs = append(attrs, "serial", strings.Join(lines, ","))
	}
	if cfg.Version != "" {
		attrs = append([]any{"version", cfg.Version}, attrs...)
	}
	if len(bcast) > 0 {
		attrs = append(attrs, "broadcast", strings.Join(bcast, ","))
	}
	if p != nil {
		attrs = append(attrs, "state_file", cfg.StateFile, "durability", cfg.Durability)
	}
	logger.Info("musqratt serving MQTT-SN", attrs...)
	if adv := bc.AdvertiseInterval; adv > 0 && adv < 15*time.Minute && len(cfg.Broadcast) > 0 {
		// Allowed (tests, labs), but every gateway on the network hears it.
		logger.Warn("advertise_interval is below the 15 minutes MQTT-SN v1.2 asks for T_ADV (6.1)", "advertise_interval", adv)
	}
	if cfg.OnServing != nil {
		cfg.OnServing(m)
	}

	err = srv.Run(ctx)
	events.Flush()
	st, bs := srv.Stats(), b.Stats()
	logger.Info("musqratt stopped",
		"datagrams_in", st.Received, "datagrams_out", st.Sent, "oversized", st.Oversized,
		"read_errors", st.ReadErrors, "write_errors", st.WriteErrors,
		"publishes_in", bs.PublishesIn, "deliveries", bs.Deliveries, "dropped", bs.TotalDrops())
	return err
}

// randomSeed seeds the engine's message-id generator from the system's randomness, so
// an off-path spoofer cannot predict the ids it would have to acknowledge.
func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano()) | 1
	}
	return binary.LittleEndian.Uint64(b[:]) | 1
}
