package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/musqratt/musqratt/kernel"
	"github.com/musqratt/musqratt/net/serial"
	"github.com/musqratt/musqratt/net/serve"
	"github.com/musqratt/musqratt/net/udp"
)

func init() { subcommands["serve"] = runServe }

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// runServe is "musqratt serve": load the configuration, apply the flags, open the
// sockets and serve until ctx is cancelled.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile          string
		listens, broadcasts stringsFlag
		gatewayID           int
		logLevel, logFormat string
		check               bool
		statusListen        string
		busyPoll            string
	)
	fs.StringVar(&configFile, "c", "", "read the configuration from `FILE` (same as --config)")
	fs.StringVar(&configFile, "config", "", "read the configuration from `FILE` (default: the built-in configuration)")
	fs.Var(&listens, "listen", "serve on UDP `ADDR`, e.g. [::]:1883 (IPv6 and IPv4), 0.0.0.0:1883, [::1]:1883, [::]:1883,ipv6only; repeatable, replaces the file's listen lines")
	fs.Var(&broadcasts, "broadcast", "send ADVERTISE to `ADDR`, or none; repeatable, replaces the file's broadcast lines")
	fs.IntVar(&gatewayID, "gateway-id", 0, "gateway id `N` (1-255) in ADVERTISE and GWINFO")
	fs.StringVar(&logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "", "log `FORMAT`: text or json")
	fs.StringVar(&statusListen, "status-listen", "", "serve /metrics, the status page and pprof over HTTP on `ADDR` (e.g. 127.0.0.1:8080), or off")
	fs.StringVar(&busyPoll, "busy-poll", "", "after each datagram, poll the socket for `DURATION` (e.g. 2ms) before sleeping: lower latency, a busy core while traffic flows; or off")
	fs.BoolVar(&check, "check", false, "check the configuration and print it, as a configuration file, then exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: musqratt serve [flags]

Serves MQTT-SN over UDP until interrupted (SIGINT or SIGTERM); SIGHUP reloads the
configuration file (docs/config.md says which keys change live). Flags override the
configuration file; docs/config.md describes every key.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "musqratt serve: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	// The configuration: the file with the flags applied, read again on SIGHUP.
	build := func() (kernel.Config, int, error) {
		cfg, err := loadConfig(configFile)
		if err != nil {
			return cfg, 1, err
		}
		if err := applyFlags(fs, &cfg, listens, broadcasts, gatewayID, logLevel, logFormat); err != nil {
			return cfg, 2, err
		}
		switch busyPoll {
		case "":
		case "off", "0":
			cfg.BusyPoll = 0
		default:
			d, err := time.ParseDuration(busyPoll)
			if err != nil || d < kernel.MinBusyPoll || d > kernel.MaxBusyPoll {
				return cfg, 2, fmt.Errorf("--busy-poll %q: want a duration from %v to %v, e.g. 2ms, or off", busyPoll, kernel.MinBusyPoll, kernel.MaxBusyPoll)
			}
			cfg.BusyPoll = d
		}
		switch statusListen {
		case "":
		case "off":
			cfg.StatusListen = ""
		default:
			if _, _, err := net.SplitHostPort(statusListen); err != nil {
				return cfg, 2, fmt.Errorf("--status-listen %q: want host:port, e.g. 127.0.0.1:8080, or off", statusListen)
			}
			cfg.StatusListen = statusListen
		}
		return cfg, 0, nil
	}
	cfg, code, err := build()
	switch {
	case err != nil && code == 2:
		fmt.Fprintf(stderr, "musqratt serve: %v\n", err)
		return code
	case err != nil:
		fmt.Fprintf(stderr, "musqratt: %v\n", err)
		return code
	}
	if check {
		printConfig(stdout, configFile, cfg)
		return 0
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logger := newLogger(stderr, cfg.LogFormat, level)
	cfg.Version = versionString()
	// SIGHUP reads the file again and applies what can change live (kernel.LiveKeys);
	// a file that does not parse keeps the configuration in force.
	cfg.Level = level
	cfg.Reload = reloadOnSignal(ctx, func() (kernel.Config, error) {
		c, _, err := build()
		return c, err
	}, configFile, logger)
	if cfg.StateFile != "" {
		st, err := openState(cfg, logger)
		if err != nil {
			logger.Error("cannot open the state file", "err", err)
			return 1
		}
		defer func() {
			if err := st.Close(); err != nil {
				logger.Error("closing the state file", "err", err)
			}
		}()
		cfg.Persistence = st
	}

	// The status server is bound before serving: an operator who asked for it gets it
	// or an error, not a broker without it.
	var statusLn net.Listener
	if cfg.StatusListen != "" {
		ln, err := listenStatus(cfg.StatusListen, logger)
		if err != nil {
			logger.Error("status_listen: cannot listen", "addr", cfg.StatusListen, "err", err)
			return 1
		}
		defer ln.Close()
		statusLn = ln
	}
	watchMetrics(ctx, &cfg, statusLn, logger, stderr)

	conns := make([]*net.UDPConn, 0, len(cfg.Listen))
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	binds := make([]serve.Bind, 0, len(cfg.Serial)+len(cfg.Listen))
	// Serial lines first: a wildcard UDP socket also "reaches" their synthetic
	// addresses (100::/64), so they must win the joined Bind's fallback by family.
	for i, l := range cfg.Serial {
		b, err := serial.Open(l.Device, l.Baud, serial.Options{Index: i})
		if err != nil {
			logger.Error("cannot open serial line", "serial_listen", l.String(), "err", err)
			return 1
		}
		defer b.Close()
		logger.Info("serving MQTT-SN on a serial line", "device", l.Device, "baud", l.Baud, "client_addr", b.Addr().String())
		binds = append(binds, b)
	}
	for _, l := range cfg.Listen {
		c, err := udp.Listen(ctx, l.Addr, udp.Options{IPv6Only: l.IPv6Only, ReceiveBuffer: cfg.ReceiveBuffer, SendBuffer: cfg.SendBuffer})
		if err != nil {
			logger.Error("cannot listen", "addr", l.String(), "err", err)
			return 1
		}
		conns = append(conns, c)
		// Batched: recvmmsg/sendmmsg on Linux, a datagram per call elsewhere.
		b, err := udp.NewBind(c, udp.DefaultBatch)
		if err != nil {
			logger.Error("cannot listen", "addr", l.String(), "err", err)
			return 1
		}
		binds = append(binds, b)
	}
	if err := kernel.RunBinds(ctx, cfg, binds, logger); err != nil {
		logger.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

func loadConfig(file string) (kernel.Config, error) {
	if file == "" {
		return kernel.Default(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return kernel.Config{}, err
	}
	defer f.Close()
	return kernel.ParseConfig(file, f)
}

// applyFlags overrides cfg with the flags that were given.
func applyFlags(fs *flag.FlagSet, cfg *kernel.Config, listens, broadcasts []string, gatewayID int, logLevel, logFormat string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(listens) > 0 {
		cfg.Listen = nil
		for _, a := range listens {
			addr, v6only := a, false
			if s, ok := strings.CutSuffix(a, ",ipv6only"); ok {
				addr, v6only = s, true
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("--listen %q: want host:port, e.g. [::]:1883 or 0.0.0.0:1883", a)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("--listen %q: port %q is not a number from 0 to 65535", a, port)
			}
			cfg.Listen = append(cfg.Listen, kernel.Listener{Addr: addr, IPv6Only: v6only})
		}
	}
	if len(broadcasts) > 0 {
		cfg.Broadcast = nil
		for _, a := range broadcasts {
			if a == "none" {
				continue
			}
			ap, err := netip.ParseAddrPort(a)
			if err != nil || ap.Port() == 0 {
				return fmt.Errorf("--broadcast %q: want address:port, e.g. 255.255.255.255:1883, or none", a)
			}
			cfg.Broadcast = append(cfg.Broadcast, ap)
		}
	}
	if set["gateway-id"] {
		if gatewayID < 1 || gatewayID > 255 {
			return fmt.Errorf("--gateway-id %d: want 1 to 255", gatewayID)
		}
		cfg.Broker.GatewayID = uint8(gatewayID)
	}
	if set["log-level"] {
		l, err := kernel.ParseLogLevel(logLevel)
		if err != nil {
			return fmt.Errorf("--log-level %q: %v", logLevel, err)
		}
		cfg.LogLevel = l
	}
	if set["log-format"] {
		if logFormat != "text" && logFormat != "json" {
			return fmt.Errorf("--log-format %q: want text or json", logFormat)
		}
		cfg.LogFormat = logFormat
	}
	return nil
}

func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printConfig prints the effective configuration for --check, in the file format.
func printConfig(w io.Writer, file string, cfg kernel.Config) {
	if file == "" {
		file = "the built-in default"
	}
	fmt.Fprintf(w, "# configuration OK: %s with the flags applied\n", file)
	w.Write(kernel.Format(cfg))
}
