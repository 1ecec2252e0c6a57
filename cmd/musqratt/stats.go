package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker/client"
)

func init() {
	subcommands["stats"] = runStats
	summaries["stats"] = "print a running broker's $SYS statistics"
}

// runStats is "musqratt stats": read a broker's $SYS/# topics over MQTT-SN and print
// them, one "topic value" line each, sorted. It works against any broker that
// publishes $SYS retained (MusQraTT does every sys_interval), needs no HTTP port, and
// reads the same numbers as the status page and SIGUSR1's dump.
func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf     clientFlags
		filter string
		quiet  time.Duration
		wait   time.Duration
		follow bool
	)
	cf.register(fs, "musqratt-stats")
	fs.StringVar(&filter, "t", "$SYS/#", "the `FILTER` to read")
	fs.DurationVar(&quiet, "quiet", 300*time.Millisecond, "print once no topic not seen before has arrived for `DURATION`")
	fs.DurationVar(&wait, "W", 5*time.Second, "give up after `DURATION` if nothing arrives")
	fs.BoolVar(&follow, "f", false, "follow: keep printing each update as it arrives, until interrupted")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: musqratt stats [-h HOST] [-p PORT] [flags]

Prints a running broker's $SYS statistics: clients by state, messages and bytes in and
out, drops, retained, subscriptions, latency percentiles. Exit 1 if the broker does
not answer or publishes no $SYS topics (sys_interval off).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, done := parseClientFlags(fs, args); done {
		return code
	}
	addr, cfg, err := cf.config()
	if err != nil {
		fmt.Fprintf(stderr, "musqratt stats: %v\n", err)
		return 2
	}
	var (
		mu     sync.Mutex
		values = map[string]string{}
		more   = make(chan struct{}, 1)
	)
	cfg.OnMessage = func(m client.Message) {
		mu.Lock()
		_, seen := values[m.Topic]
		values[m.Topic] = string(m.Payload)
		mu.Unlock()
		if follow {
			fmt.Fprintf(stdout, "%s %s\n", m.Topic, m.Payload)
		}
		if seen {
			return // an update: with a short sys_interval they never stop coming
		}
		select {
		case more <- struct{}{}:
		default:
		}
	}
	c, err := client.Dial(ctx, addr, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "musqratt stats: %s: %v\n", addr, err)
		return 1
	}
	defer finishSub(c, &cf, stderr)
	if _, _, err := c.Subscribe(ctx, client.Name(filter), 0); err != nil {
		fmt.Fprintf(stderr, "musqratt stats: %v\n", err)
		return 1
	}
	if follow {
		select {
		case <-ctx.Done():
			return 0
		case <-c.Done():
			fmt.Fprintf(stderr, "musqratt stats: %v\n", c.Err())
			return 1
		}
	}
	giveUp := time.NewTimer(wait)
	defer giveUp.Stop()
	// Retained values arrive in a burst after SUBACK: print once it has settled.
	var settled <-chan time.Time
	for {
		select {
		case <-more:
			settled = time.After(quiet)
		case <-settled:
			mu.Lock()
			defer mu.Unlock()
			topics := make([]string, 0, len(values))
			for t := range values {
				topics = append(topics, t)
			}
			sort.Strings(topics)
			for _, t := range topics {
				fmt.Fprintf(stdout, "%s %s\n", t, values[t])
			}
			return 0
		case <-giveUp.C:
			fmt.Fprintf(stderr, "musqratt stats: nothing on %s from %s within %v (is sys_interval off?)\n", filter, addr, wait)
			return 1
		case <-ctx.Done():
			return 1
		case <-c.Done():
			fmt.Fprintf(stderr, "musqratt stats: %v\n", c.Err())
			return 1
		}
	}
}
