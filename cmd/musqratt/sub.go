package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/musqratt/musqratt/broker/client"
)

func init() { subcommands["sub"] = runSub }

// runSub is "musqratt sub": connect, subscribe, print what arrives until interrupted,
// -C messages, or -W seconds; then disconnect.
func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt sub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf          clientFlags
		tf          topicFlags
		qos         int
		verbose     bool
		count       int
		wait        int
		noRetained  bool
		sleep, wake time.Duration
	)
	cf.register(fs, "musqratt-sub")
	tf.register(fs, "subscribe to")
	fs.IntVar(&qos, "q", 0, "subscribe at `QOS` 0, 1 or 2")
	fs.BoolVar(&verbose, "v", false, "print the topic before each message: TOPIC PAYLOAD (a pre-defined id as its number)")
	fs.IntVar(&count, "C", 0, "exit after `N` messages")
	fs.IntVar(&wait, "W", 0, "exit after `SECONDS` (exit 27 if -C was not reached, as mosquitto_sub)")
	fs.BoolVar(&noRetained, "R", false, "do not print retained messages (stale ones sent on subscribe)")
	fs.DurationVar(&sleep, "sleep", 0, "sleep mode: after subscribing, sleep for `DURATION` at a time; the gateway buffers messages until the client wakes")
	fs.DurationVar(&wake, "wake", 0, "in sleep mode, wake (PINGREQ) every `DURATION` to collect messages (default 4/5 of --sleep)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: musqratt sub -t TOPIC|-T ID [-t ...] [flags]

Subscribes on an MQTT-SN gateway and prints each message's payload on its own line
(with -v, the topic first). -t takes names and filters with + and #. Exit 0 on
interrupt or when -C is reached; 1 if the gateway refused, did not answer or was lost;
2 on bad flags or topics (checked before connecting); 27 if -W passed first.

The gateway is reached over UDP at -h/-p, or with --serial DEVICE [--baud RATE] over
a serial line that the gateway serves with serial_listen (MQTT-SN messages back to
back, each framed by its Length field); -h or -p with --serial is a flag error.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseClientFlags(fs, args); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "musqratt sub: "+format+"\n", a...)
		return code
	}
	addr, cfg, err := cf.config()
	if err != nil {
		return fail(2, "%v", err)
	}
	topics, err := tf.topics()
	if err != nil {
		return fail(2, "%v", err)
	}
	if len(topics) == 0 {
		return fail(2, "give at least one topic: -t NAME or -T ID")
	}
	for _, t := range topics {
		if err := t.CheckSubscribe(); err != nil {
			return fail(2, "-t: %v", err)
		}
	}
	q, err := parseQoS(qos, 0)
	if err != nil {
		return fail(2, "%v", err)
	}
	if count < 0 || wait < 0 {
		return fail(2, "-C and -W must not be negative")
	}
	if sleep != 0 && (sleep < time.Second || sleep > 65535*time.Second) {
		return fail(2, "--sleep %v: a sleep duration is 1 s to 65535 s", sleep)
	}
	if wake == 0 {
		wake = sleep * 4 / 5
	}
	if sleep != 0 && (wake <= 0 || wake > sleep) {
		return fail(2, "--wake %v must be positive and at most --sleep %v", wake, sleep)
	}

	// The reader goroutine hands messages over; printing here keeps stdout in order.
	msgs := make(chan client.Message, 4096)
	cfg.OnMessage = func(m client.Message) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}
	cfg.OnPacket = cf.tracer(stderr)
	c, err := cf.dial(ctx, addr, cfg)
	if err != nil {
		return fail(1, "%s", dialError(addr, err))
	}
	defer c.Close()
	// From here on, an error ends the session with DISCONNECT: no will for a client
	// that stopped on purpose.
	abort := func(err error) int {
		cf.disconnect(c, stderr)
		return fail(1, "%v", err)
	}
	for _, t := range topics {
		granted, id, err := c.Subscribe(ctx, t, q)
		if err != nil {
			return abort(err)
		}
		cf.debugf(stderr, "subscribed to %v (granted QoS %d, topic id %d)", t, granted, id)
	}
	var wakeTick <-chan time.Time
	if sleep != 0 {
		if err := c.Sleep(ctx, sleep); err != nil {
			return abort(err)
		}
		cf.debugf(stderr, "asleep for %v, waking every %v", sleep, wake)
		tk := time.NewTicker(wake)
		defer tk.Stop()
		wakeTick = tk.C
	}
	var timeout <-chan time.Time
	if wait > 0 {
		tm := time.NewTimer(time.Duration(wait) * time.Second)
		defer tm.Stop()
		timeout = tm.C
	}

	out := bufio.NewWriter(stdout)
	printed := 0
	for {
		select {
		case m := <-msgs:
			if noRetained && m.Retain {
				continue
			}
			if verbose {
				name := m.Topic
				if name == "" {
					name = strconv.Itoa(int(m.TopicID))
				}
				fmt.Fprintf(out, "%s ", name)
			}
			out.Write(m.Payload)
			out.WriteByte('\n')
			if len(msgs) == 0 {
				out.Flush() // a script reading our output sees each message at once
			}
			printed++
			if count > 0 && printed >= count {
				out.Flush()
				finishSub(c, &cf, stderr)
				return 0
			}
		case <-wakeTick:
			if err := c.Wake(ctx); err != nil {
				out.Flush()
				return abort(err)
			}
			cf.debugf(stderr, "woke, collected buffered messages, asleep again")
		case <-timeout:
			out.Flush()
			cf.debugf(stderr, "-W %d passed after %d messages", wait, printed)
			finishSub(c, &cf, stderr)
			return 27
		case <-c.Done():
			out.Flush()
			return fail(1, "%v", c.Err())
		case <-ctx.Done():
			out.Flush()
			finishSub(c, &cf, stderr)
			return 0
		}
	}
}

// finishSub ends the session with DISCONNECT, waiting briefly: the process is leaving
// either way, and a gateway that does not answer should not hold it up.
func finishSub(c *client.Client, cf *clientFlags, stderr io.Writer) {
	cf.disconnect(c, stderr)
}
