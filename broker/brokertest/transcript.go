package brokertest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/packet"
)

// Transcripts are golden tests of the engine, one flow per file in the style of
// crypto/tls's testdata: what clients send is written by hand, what the broker answers is
// recorded and compared, and regenerated with -update.
//
//	# a comment (kept)
//	config retry=10s retries=3 advertise=off gw=1 predefined=1:a/b
//	client c1 10.0.0.1:1000
//	client c2 [2001:db8::2]:1000
//	client f1 10.0.0.9:1883 node=6e31         # behind a forwarder: replies come encapsulated
//	t=0 c1> 0d04 04 01 003c 6331 ...           # c1 sends these octets at t=0 (spaces ignored)
//	t=1s c1> 070d 0001 $id 00                  # $id: the msg id c1 last received (see Client.LastMsgID)
//	< c1 0305 00  # CONNACK rc=0               # recorded: the broker sent this to c1
//	t=1m tick                                  # advance virtual time, running due timers
//	~ t=10s                                    # recorded: the instant the next lines were sent by Tick
//	< * 0500 010384  # ADVERTISE ...           # recorded: a broadcast
//	expect-empty                               # no session, subscription or message is left
//
// Lines starting with '<' or '~' are output: the runner discards them when it reads the
// file and writes what the broker does now.

// RunTranscript replays the transcript at path against a fresh broker and fails tb if
// the broker's output differs from the recorded one; with update it rewrites the file.
func RunTranscript(tb testing.TB, path string, update bool) {
	tb.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := replay(tb, src)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if bytes.Equal(got, src) {
		return
	}
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("%s: updated", path)
		return
	}
	tb.Errorf("%s: broker output differs from the transcript (rerun with -update to accept):\n%s", path, firstDiff(src, got))
}

func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  transcript: %s\n  broker now: %s", i+1, wl, gl)
		}
	}
	return "(no difference)"
}

// replay runs the input lines of src and returns the transcript with fresh output lines.
func replay(tb testing.TB, src []byte) ([]byte, error) {
	var w bytes.Buffer
	var cfg broker.Config
	type clientDecl struct{ name, addr, node string }
	var decls []clientDecl
	var n *Net
	clients := map[string]*Client{}
	logged := 0
	start := func() {
		if n != nil {
			return
		}
		n = New(tb, cfg)
		n.KeepLog = true
		for _, d := range decls {
			if d.node != "" {
				node, _ := hex.DecodeString(d.node)
				clients[d.name] = n.NewForwardedClient(d.name, d.addr, node)
			} else {
				clients[d.name] = n.NewClient(d.name, d.addr)
			}
		}
	}
	// flush writes the output recorded since the last call.
	var lastMarker time.Time
	flush := func() {
		for ; logged < len(n.Log); logged++ {
			r := n.Log[logged]
			if r.Dir == ToBroker {
				continue
			}
			if r.Tick && !r.At.Equal(lastMarker) {
				fmt.Fprintf(&w, "~ t=%v\n", Since(r.At))
				lastMarker = r.At
			}
			to := "*"
			if r.Client != nil {
				to = r.Client.Name
			}
			fmt.Fprintf(&w, "< %s %s  # %s\n", to, spacedHex(r.B), DescribeBytes(r.B))
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "<"), strings.HasPrefix(trimmed, "~"):
			continue // recorded output: regenerated below
		case trimmed == "", strings.HasPrefix(trimmed, "#"):
			w.WriteString(line + "\n")
			continue
		}
		w.WriteString(line + "\n")
		body, _, _ := strings.Cut(trimmed, "#")
		fields := strings.Fields(body)
		bad := func(format string, args ...any) ([]byte, error) {
			return nil, fmt.Errorf("line %d: %s: %s", lineNo, line, fmt.Sprintf(format, args...))
		}
		switch {
		case fields[0] == "config":
			if n != nil {
				return bad("config after the first event")
			}
			for _, kv := range fields[1:] {
				if err := setConfig(&cfg, kv); err != nil {
					return bad("%v", err)
				}
			}
		case fields[0] == "client":
			if n != nil {
				return bad("client after the first event")
			}
			if len(fields) < 3 || len(fields) > 4 {
				return bad("want: client NAME ADDR [node=HEX]")
			}
			d := clientDecl{name: fields[1], addr: fields[2]}
			if len(fields) == 4 {
				v, ok := strings.CutPrefix(fields[3], "node=")
				if !ok {
					return bad("want node=HEX")
				}
				if _, err := hex.DecodeString(v); err != nil {
					return bad("node: %v", err)
				}
				d.node = v
			}
			decls = append(decls, d)
		case fields[0] == "expect-empty":
			start()
			n.Run()
			n.CheckEmpty(tb)
		case strings.HasPrefix(fields[0], "t="):
			start()
			d, err := time.ParseDuration(strings.TrimPrefix(fields[0], "t="))
			if err != nil {
				return bad("%v", err)
			}
			at := Start.Add(d)
			if at.Before(n.Now()) {
				return bad("time goes backwards (now t=%v)", Since(n.Now()))
			}
			if len(fields) < 2 {
				return bad("want: t=DUR NAME> HEX or t=DUR tick")
			}
			lastMarker = at // timers due at the line's own time need no marker
			n.AdvanceTo(at)
			flush()
			if fields[1] == "tick" {
				continue
			}
			name, ok := strings.CutSuffix(fields[1], ">")
			c := clients[name]
			if !ok || c == nil {
				return bad("unknown sender %q", fields[1])
			}
			msgID := fmt.Sprintf("%04x", c.LastMsgID)
			raw, err := hex.DecodeString(strings.ReplaceAll(strings.Join(fields[2:], ""), "$id", msgID))
			if err != nil {
				return bad("hex: %v", err)
			}
			c.SendRaw(raw)
			flush()
		default:
			return bad("unknown directive %q", fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// setConfig applies one key=value of a config line.
func setConfig(cfg *broker.Config, kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q: want key=value", kv)
	}
	dur := func(p *time.Duration) error {
		if v == "off" {
			*p = -1
			return nil
		}
		d, err := time.ParseDuration(v)
		*p = d
		return err
	}
	num := func(p *int) error {
		i, err := strconv.Atoi(v)
		*p = i
		return err
	}
	switch k {
	case "retry":
		return dur(&cfg.RetryInterval)
	case "advertise":
		return dur(&cfg.AdvertiseInterval)
	case "retries":
		return num(&cfg.MaxRetries)
	case "maxclients":
		return num(&cfg.MaxClients)
	case "maxqueued":
		return num(&cfg.MaxQueuedPerClient)
	case "maxsleep":
		return num(&cfg.MaxSleepBuffer)
	case "maxpayload":
		return num(&cfg.MaxPayload)
	case "amplification":
		return num(&cfg.MaxAmplification)
	case "seed":
		i, err := strconv.ParseUint(v, 10, 64)
		cfg.Seed = i
		return err
	case "gw":
		i, err := strconv.ParseUint(v, 10, 8)
		cfg.GatewayID = uint8(i)
		return err
	case "predefined":
		ids, name, ok := strings.Cut(v, ":")
		id, err := strconv.ParseUint(ids, 10, 16)
		if !ok || err != nil {
			return fmt.Errorf("%q: want predefined=ID:NAME", kv)
		}
		if cfg.Predefined == nil {
			cfg.Predefined = map[uint16]string{}
		}
		cfg.Predefined[uint16(id)] = name
		return nil
	}
	return fmt.Errorf("unknown config key %q", k)
}

// spacedHex renders a datagram as hex split into its fields — the encapsulation header,
// the header, then the fields of the message type — so a reader can find them.
func spacedHex(b []byte) string {
	var parts []string
	rest := b
	for len(rest) >= 2 {
		hdr := 2
		n := int(rest[0])
		if rest[0] == 0x01 && len(rest) >= 4 {
			hdr, n = 4, int(rest[1])<<8|int(rest[2])
		}
		t := packet.Type(rest[hdr-1])
		if t == packet.ENCAPSULATED && n <= len(rest) {
			parts = append(parts, hex.EncodeToString(rest[:n]))
			rest = rest[n:]
			continue
		}
		parts = append(parts, hex.EncodeToString(rest[:hdr]))
		rest = rest[hdr:]
		for _, w := range fieldWidths[t] {
			if w > len(rest) {
				break
			}
			parts = append(parts, hex.EncodeToString(rest[:w]))
			rest = rest[w:]
		}
		break
	}
	if len(rest) > 0 {
		parts = append(parts, hex.EncodeToString(rest))
	}
	return strings.Join(parts, " ")
}

// fieldWidths are the fixed fields of each message body (5.4); what follows them (a
// name, a payload) is one more group.
var fieldWidths = map[packet.Type][]int{
	packet.ADVERTISE: {1, 2}, packet.SEARCHGW: {1}, packet.GWINFO: {1},
	packet.CONNECT: {1, 1, 2}, packet.CONNACK: {1}, packet.WILLTOPIC: {1},
	packet.REGISTER: {2, 2}, packet.REGACK: {2, 2, 1},
	packet.PUBLISH: {1, 2, 2}, packet.PUBACK: {2, 2, 1},
	packet.PUBREC: {2}, packet.PUBREL: {2}, packet.PUBCOMP: {2}, packet.UNSUBACK: {2},
	packet.SUBSCRIBE: {1, 2}, packet.UNSUBSCRIBE: {1, 2}, packet.SUBACK: {1, 2, 2, 1},
	packet.DISCONNECT: {2}, packet.WILLTOPICUPD: {1},
	packet.WILLTOPICRESP: {1}, packet.WILLMSGRESP: {1},
}
