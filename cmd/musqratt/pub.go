package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
)

func init() { subcommands["pub"] = runPub }

// stdin is where -s and -l read; tests replace it.
var stdin io.Reader = os.Stdin

// runPub is "musqratt pub": connect, publish one message (or one per line of stdin),
// disconnect. QoS -1 publishes without connecting.
func runPub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt pub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf                    clientFlags
		tf                    topicFlags
		message, file         string
		null, stdinAll, lines bool
		qos                   int
		retain                bool
	)
	cf.register(fs, "musqratt-pub")
	tf.register(fs, "publish to")
	fs.StringVar(&message, "m", "", "publish `MESSAGE`")
	fs.StringVar(&file, "f", "", "publish the contents of `FILE`")
	fs.BoolVar(&stdinAll, "s", false, "publish all of stdin as one message")
	fs.BoolVar(&lines, "l", false, "publish each line of stdin as a message (without its newline)")
	fs.BoolVar(&null, "n", false, "publish an empty message")
	fs.IntVar(&qos, "q", 0, "`QOS`: -1 (no connection; pre-defined id or short name only), 0, 1 or 2")
	fs.BoolVar(&retain, "r", false, "retain the message")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: musqratt pub -t TOPIC|-T ID (-m MESSAGE | -f FILE | -s | -l | -n) [flags]

Publishes to an MQTT-SN gateway and exits 0 once the message is delivered to it (QoS
1 and 2: acknowledged; QoS 0 and -1: sent). Exit 1: the gateway refused or did not
answer; exit 2: bad flags, topic or message size (checked before connecting).

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
		fmt.Fprintf(stderr, "musqratt pub: "+format+"\n", a...)
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
	if len(topics) != 1 {
		return fail(2, "give exactly one topic: -t NAME or -T ID")
	}
	if err := topics[0].CheckPublish(); err != nil {
		return fail(2, "-t: %v", err)
	}
	q, err := parseQoS(qos, -1)
	if err != nil {
		return fail(2, "%v", err)
	}
	sources := 0
	for _, set := range []bool{message != "", file != "", stdinAll, lines, null} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return fail(2, "give exactly one message source: -m, -f, -s, -l or -n")
	}
	var payload []byte
	switch {
	case message != "":
		payload = []byte(message)
	case file != "":
		if payload, err = os.ReadFile(file); err != nil {
			return fail(1, "%v", err)
		}
	case stdinAll:
		if payload, err = io.ReadAll(stdin); err != nil {
			return fail(1, "reading stdin: %v", err)
		}
	}
	if len(payload) > client.MaxPayload {
		return fail(2, "the message is %d octets; one MQTT-SN PUBLISH carries at most %d", len(payload), client.MaxPayload)
	}

	if q == packet.QoSMinus1 {
		return pubQoSMinus1(addr, topics[0], payload, retain, lines, &cf, stderr, fail)
	}
	cfg.OnPacket = cf.tracer(stderr)
	c, err := cf.dial(ctx, addr, cfg)
	if err != nil {
		return fail(1, "%s", dialError(addr, err))
	}
	publish := func(p []byte) error { return c.Publish(ctx, topics[0], p, q, retain) }
	if lines {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), packet.MaxLen)
		for sc.Scan() && err == nil {
			err = publish(sc.Bytes())
		}
		if err == nil {
			err = sc.Err()
		}
	} else {
		err = publish(payload)
	}
	if err != nil {
		// DISCONNECT, so the gateway publishes no will for a client that gave up.
		cf.disconnect(c, stderr)
		return fail(1, "%v", err)
	}
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, context.Canceled) {
		// Delivered already; a lost DISCONNECT answer is worth a word, not a failure.
		fmt.Fprintf(stderr, "musqratt pub: %v\n", err)
	}
	return 0
}

// pubQoSMinus1 sends without connecting: no answer comes, so success means sent.
func pubQoSMinus1(addr string, t client.Topic, payload []byte, retain, lines bool, cf *clientFlags, stderr io.Writer, fail func(int, string, ...any) int) int {
	conn, err := cf.conn(addr)
	if err != nil {
		return fail(1, "%s", dialError(addr, err))
	}
	defer conn.Close()
	trace := cf.tracer(stderr)
	send := func(data []byte) error {
		p, err := client.QoSMinus1Packet(t, data, retain)
		if err != nil {
			return err
		}
		if trace != nil {
			trace(true, &p)
		}
		_, err = conn.Write(packet.Append(nil, &p))
		return err
	}
	if lines {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() && err == nil {
			err = send(sc.Bytes())
		}
	} else {
		err = send(payload)
	}
	if err != nil {
		code := 1
		if t.Type == packet.TopicNormal {
			code = 2
		}
		return fail(code, "%v", err)
	}
	return 0
}
