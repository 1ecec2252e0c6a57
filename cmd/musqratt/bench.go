package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/trace"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

func init() { subcommands["bench"] = runBench }

// benchEpoch is the origin of the monotonic timestamps carried in the payloads: the
// publisher and the subscriber run in the same process, so one clock serves both.
var benchEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(benchEpoch)) }

// lateThreshold: a send more than this behind its scheduled time counts as late.
const lateThreshold = 100 * time.Microsecond

// spinWindow: the pacer sleeps until this long before a send, then busy-waits.
const spinWindow = 150 * time.Microsecond

// payloadHeader is the sequence number (8 octets) and the send time (8 octets, ns).
const payloadHeader = 16

type benchOpts struct {
	host    string
	port    int
	n       int
	rate    float64
	size    int
	qos     int
	rounds  int
	topic   string
	timeout time.Duration
	plot    string
	fanout  int // subscribers; every message is delivered to each
	window  int // QoS 0: at most this many messages sent and not yet received (0: no window)
	idle    int // --idle: connect this many idle clients and report memory instead
	pid     int

	floorProcess bool   // run the floor relay as a child process instead of in this one
	floorAddr    string // an external floor (an image in relay mode) instead of a relay of ours
	trace        string // write a Go execution trace of the bench process here
}

// roundResult is one measured run over one path.
type roundResult struct {
	Sent, Received, Lost, Duplicated, Reordered, Late, Unacked int
	lat                                                        []int64 // ns, sorted
	// SendRate and RecvRate are messages per second, first to last send and first to
	// last receipt.
	SendRate, RecvRate float64
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOpts
	fs.StringVar(&o.host, "h", "127.0.0.1", "broker `HOST`")
	fs.IntVar(&o.port, "p", 1883, "broker UDP `PORT`")
	fs.IntVar(&o.n, "n", 1000, "messages per run")
	fs.Float64Var(&o.rate, "r", 1000, "publish `RATE` in messages per second (QoS 1/2: also bounded by the ack round trip); 0: as fast as possible (throughput)")
	fs.IntVar(&o.size, "s", 32, "payload `SIZE` in octets (at least 16: sequence number and timestamp)")
	fs.IntVar(&o.qos, "q", 0, "`QOS` of the publish and of the subscription: 0, 1 or 2")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs the floor and the target, interleaved; medians are reported")
	fs.StringVar(&o.topic, "t", "musqratt/bench", "`TOPIC` name")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "wait this long for each reply, and for the last messages after the final send")
	fs.IntVar(&o.window, "w", 0, "QoS 0 window: at most `W` messages sent and not yet received by every subscriber (open loop within it); 0: none")
	fs.IntVar(&o.fanout, "k", 1, "fan-out: `K` subscribers, each receiving every message (lost and received count deliveries)")
	fs.IntVar(&o.idle, "idle", 0, "memory mode: connect `K` idle clients and report the broker's RSS per client (the broker must run on this machine)")
	fs.IntVar(&o.pid, "pid", 0, "with --idle: the broker's process `ID` (default: found by its UDP port)")
	fs.StringVar(&o.trace, "trace", "", "write a Go execution trace of the bench itself to `FILE` (go tool trace): where the bench's own time goes")
	fs.BoolVar(&o.floorProcess, "floor-process", false, "run the floor relay in a process of its own (as a broker is) instead of in the bench's")
	fs.StringVar(&o.floorAddr, "floor", "", "use the relay at `HOST:PORT` as the floor (an image booted in relay mode: same stack, NIC and loop, no broker) instead of starting one")
	fs.StringVar(&o.plot, "plot", "", "write an SVG latency CDF of the target and the floor to `FILE`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: musqratt bench [flags]

Measures an MQTT-SN broker's publish-to-delivery latency over UDP: one subscriber, one
publisher at a fixed rate, each payload carrying a sequence number and a send time. The
same run over a raw UDP relay in this process (the floor) is interleaved with the
broker's, and every figure is also given as a ratio to the floor. The last line is
"BENCH {json}".

Flags:
`)
		fs.PrintDefaults()
	}
	// -h is the host; alone, it asks for help ("musqratt help bench" passes it).
	if len(args) == 1 && args[0] == "-h" {
		fs.Usage()
		return 0
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "musqratt bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch {
	case o.n < 1:
		fmt.Fprintln(stderr, "musqratt bench: -n must be at least 1")
		return 2
	case o.rate < 0 || math.IsInf(o.rate, 0) || math.IsNaN(o.rate):
		fmt.Fprintln(stderr, "musqratt bench: -r must be 0 (unpaced) or positive")
		return 2
	case o.size < payloadHeader || o.size > 60000:
		fmt.Fprintf(stderr, "musqratt bench: -s must be %d to 60000\n", payloadHeader)
		return 2
	case o.qos < 0 || o.qos > 2:
		fmt.Fprintln(stderr, "musqratt bench: -q must be 0, 1 or 2")
		return 2
	case o.rounds < 1:
		fmt.Fprintln(stderr, "musqratt bench: --rounds must be at least 1")
		return 2
	case o.timeout <= 0:
		fmt.Fprintln(stderr, "musqratt bench: --timeout must be positive")
		return 2
	case o.window < 0:
		fmt.Fprintln(stderr, "musqratt bench: -w must be 0 (no window) or positive")
		return 2
	case o.window > 0 && o.qos != 0:
		fmt.Fprintln(stderr, "musqratt bench: -w is for QoS 0; at QoS 1 and 2 one message is in flight (the spec's rule)")
		return 2
	case o.fanout < 1 || o.fanout > 10000:
		fmt.Fprintln(stderr, "musqratt bench: -k must be 1 to 10000")
		return 2
	case o.topic == "":
		fmt.Fprintln(stderr, "musqratt bench: -t must not be empty")
		return 2
	}
	target, err := net.ResolveUDPAddr("udp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		fmt.Fprintf(stderr, "musqratt bench: %v\n", err)
		return 2
	}

	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			fmt.Fprintf(stderr, "musqratt bench: --trace: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintf(stderr, "musqratt bench: --trace: %v\n", err)
			return 1
		}
		defer trace.Stop()
	}
	if o.idle > 0 {
		return benchIdle(target, o.idle, o.pid, o.timeout, stdout, stderr)
	}

	var relay interface {
		addr() *net.UDPAddr
		close()
	}
	floorKind := "a relay in this process"
	switch {
	case o.floorAddr != "":
		var at *net.UDPAddr
		if at, err = net.ResolveUDPAddr("udp", o.floorAddr); err != nil {
			fmt.Fprintf(stderr, "musqratt bench: --floor %q: %v\n", o.floorAddr, err)
			return 2
		}
		relay, floorKind = externalFloor{at}, "the relay at "+at.String()
	case o.floorProcess:
		relay, err = startRelayProcess()
		floorKind = "a relay in its own process"
	default:
		relay, err = startRelay()
	}
	if err != nil {
		fmt.Fprintf(stderr, "musqratt bench: floor relay: %v\n", err)
		return 1
	}
	defer relay.close()

	fmt.Fprintf(stdout, "musqratt bench: target %s, QoS %d, %d messages at %g/s, %d-octet payload, %d subscriber(s), %d round(s); floor: %s\n\n",
		target, o.qos, o.n, o.rate, o.size, o.fanout, o.rounds, floorKind)
	fmt.Fprintln(stdout, "| path | round | sent | received | lost | dup | reordered | late | unacked | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | sent/s | received/s |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var floors, targets []roundResult
	for r := 1; r <= o.rounds; r++ {
		// Interleave, alternating which path goes first.
		order := []string{"floor", "target"}
		if r%2 == 0 {
			order = []string{"target", "floor"}
		}
		for _, path := range order {
			addr := target
			if path == "floor" {
				addr = relay.addr()
			}
			res, err := benchRun(ctx, addr, o, fmt.Sprintf("%c%d", path[0], r))
			if err != nil {
				fmt.Fprintf(stderr, "musqratt bench: %s round %d: %v\n", path, r, err)
				return 1
			}
			printRow(stdout, path, strconv.Itoa(r), res.counts(), append(res.quantiles(), res.SendRate, res.RecvRate))
			if path == "floor" {
				floors = append(floors, res)
			} else {
				targets = append(targets, res)
			}
		}
	}
	fq, tq := medianQuantiles(floors), medianQuantiles(targets)
	fc, tc := sumCounts(floors), sumCounts(targets)
	fr, tr := medianRates(floors), medianRates(targets)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "Medians over the rounds (counts: totals):")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| path | rounds | sent | received | lost | dup | reordered | late | unacked | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | sent/s | received/s |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	printRow(stdout, "floor", strconv.Itoa(o.rounds), fc, append(fq[:len(fq):len(fq)], fr[0], fr[1]))
	printRow(stdout, "target", strconv.Itoa(o.rounds), tc, append(tq[:len(tq):len(tq)], tr[0], tr[1]))
	ratio := make([]float64, len(tq))
	fmt.Fprint(stdout, "| target/floor | | | | | | | | |")
	for i := range tq {
		ratio[i] = math.NaN()
		if fq[i] > 0 {
			ratio[i] = tq[i] / fq[i]
		}
		fmt.Fprintf(stdout, " %.2f× |", ratio[i])
	}
	for i := range tr {
		r := math.NaN()
		if fr[i] > 0 {
			r = tr[i] / fr[i]
		}
		fmt.Fprintf(stdout, " %.2f× |", r)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout)

	if o.plot != "" {
		if err := writePlot(o.plot, o, mergeLat(targets), mergeLat(floors)); err != nil {
			fmt.Fprintf(stderr, "musqratt bench: --plot: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "latency CDF written to %s\n", o.plot)
	}

	out := benchJSON{
		Target: target.String(), QoS: o.qos, N: o.n, Rate: o.rate, Size: o.size, Rounds: o.rounds, FloorProc: o.floorProcess, FloorAddr: o.floorAddr,
		Sent: tc[0], Received: tc[1], Lost: tc[2], Duplicated: tc[3], Reordered: tc[4], Late: tc[5], Unacked: tc[6],
		Latency: quantileMap(tq), SendRate: math.Round(tr[0]), RecvRate: math.Round(tr[1]), Floor: benchFloorJSON{
			Sent: fc[0], Received: fc[1], Lost: fc[2], Duplicated: fc[3], Reordered: fc[4], Late: fc[5], Unacked: fc[6],
			Latency: quantileMap(fq), SendRate: math.Round(fr[0]), RecvRate: math.Round(fr[1]),
		},
		Ratio: quantileMap(ratio),
	}
	b, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(stderr, "musqratt bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "BENCH %s\n", b)
	// Unpaced, loss is what is measured, not a failure.
	if o.rate > 0 && tc[2] != 0 || tc[6] != 0 {
		return 1
	}
	return 0
}

type benchFloorJSON struct {
	Sent       int                `json:"sent"`
	Received   int                `json:"received"`
	Lost       int                `json:"lost"`
	Duplicated int                `json:"duplicated"`
	Reordered  int                `json:"reordered"`
	Late       int                `json:"late"`
	Unacked    int                `json:"unacked"`
	Latency    map[string]float64 `json:"latency_us"`
	SendRate   float64            `json:"send_rate"`
	RecvRate   float64            `json:"recv_rate"`
}

type benchJSON struct {
	Target     string             `json:"target"`
	QoS        int                `json:"qos"`
	N          int                `json:"n"`
	Rate       float64            `json:"rate"`
	Size       int                `json:"size"`
	Rounds     int                `json:"rounds"`
	FloorProc  bool               `json:"floor_process"`
	FloorAddr  string             `json:"floor_addr,omitempty"`
	Sent       int                `json:"sent"`
	Received   int                `json:"received"`
	Lost       int                `json:"lost"`
	Duplicated int                `json:"duplicated"`
	Reordered  int                `json:"reordered"`
	Late       int                `json:"late"`
	Unacked    int                `json:"unacked"`
	Latency    map[string]float64 `json:"latency_us"`
	SendRate   float64            `json:"send_rate"`
	RecvRate   float64            `json:"recv_rate"`
	Floor      benchFloorJSON     `json:"floor"`
	Ratio      map[string]float64 `json:"ratio"`
}

var quantileNames = []string{"p50", "p90", "p99", "p99.9", "max"}
var quantileQs = []float64{0.5, 0.9, 0.99, 0.999, 1}

func quantileMap(v []float64) map[string]float64 {
	m := make(map[string]float64, len(v))
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			x = 0 // JSON has no NaN
		}
		m[quantileNames[i]] = math.Round(x*100) / 100
	}
	return m
}

func (r *roundResult) counts() [7]int {
	return [7]int{r.Sent, r.Received, r.Lost, r.Duplicated, r.Reordered, r.Late, r.Unacked}
}

// quantiles returns p50, p90, p99, p99.9 and max in µs (nearest rank).
func (r *roundResult) quantiles() []float64 {
	q := make([]float64, len(quantileQs))
	for i, p := range quantileQs {
		q[i] = float64(quantileOf(r.lat, p)) / 1e3
	}
	return q
}

func quantileOf(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func sumCounts(rs []roundResult) [7]int {
	var s [7]int
	for i := range rs {
		c := rs[i].counts()
		for j := range s {
			s[j] += c[j]
		}
	}
	return s
}

func medianQuantiles(rs []roundResult) []float64 {
	out := make([]float64, len(quantileQs))
	for i := range out {
		v := make([]float64, len(rs))
		for j := range rs {
			v[j] = rs[j].quantiles()[i]
		}
		out[i] = median(v)
	}
	return out
}

// medianRates returns the median send and receive rates.
func medianRates(rs []roundResult) []float64 {
	s, r := make([]float64, len(rs)), make([]float64, len(rs))
	for i := range rs {
		s[i], r[i] = rs[i].SendRate, rs[i].RecvRate
	}
	return []float64{median(s), median(r)}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func mergeLat(rs []roundResult) []int64 {
	var all []int64
	for i := range rs {
		all = append(all, rs[i].lat...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all
}

func printRow(w io.Writer, path, round string, c [7]int, q []float64) {
	fmt.Fprintf(w, "| %s | %s |", path, round)
	for _, x := range c {
		fmt.Fprintf(w, " %d |", x)
	}
	for _, x := range q {
		fmt.Fprintf(w, " %.1f |", x)
	}
	fmt.Fprintln(w)
}

// snConn is one MQTT-SN client socket, connected to the server (broker or relay).
type snConn struct {
	c       *net.UDPConn
	raw     syscall.RawConn // c's descriptor, for readWait
	buf     []byte
	out     []byte
	timeout time.Duration
}

func dialSN(addr *net.UDPAddr, timeout time.Duration) (*snConn, error) {
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(1 << 20)
	_ = c.SetWriteBuffer(1 << 20)
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &snConn{c: c, raw: raw, buf: make([]byte, 65536), timeout: timeout}, nil
}

func (s *snConn) send(p *packet.Packet) error {
	s.out = packet.Append(s.out[:0], p)
	_, err := s.c.Write(s.out)
	return err
}

// await reads until a packet of type want (and msgID, when nonzero) arrives, or the
// timeout passes. Other packets are answered when they need an answer, else ignored.
// It waits with readWait: its thread blocks in the kernel, the goroutine never parks in
// Go's network poller, which stays free for the subscribers' goroutines.
func (s *snConn) await(want packet.Type, msgID uint16, p *packet.Packet) error {
	end := monoNow() + int64(s.timeout)
	for {
		n, err := s.readWait(time.Duration(end - monoNow()))
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("no %v within %v", want, s.timeout)
			}
			return err
		}
		p.Reset()
		if packet.Decode(s.buf[:n], p) != nil {
			continue
		}
		if p.Type == want && (msgID == 0 || p.MsgID == msgID) {
			return nil
		}
		s.answer(p)
	}
}

// answer replies to the broker's requests that are no part of the measurement.
func (s *snConn) answer(p *packet.Packet) {
	switch p.Type {
	case packet.REGISTER:
		_ = s.send(&packet.Packet{Type: packet.REGACK, TopicID: p.TopicID, MsgID: p.MsgID})
	case packet.PINGREQ:
		_ = s.send(&packet.Packet{Type: packet.PINGRESP})
	}
}

func (s *snConn) connect(clientID string) error {
	err := s.send(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: packet.ProtocolID,
		Duration: 600, ClientID: []byte(clientID)})
	if err != nil {
		return err
	}
	var p packet.Packet
	if err := s.await(packet.CONNACK, 0, &p); err != nil {
		return err
	}
	if p.ReturnCode != packet.Accepted {
		return fmt.Errorf("CONNACK: %v", p.ReturnCode)
	}
	return nil
}

func (s *snConn) disconnect() {
	_ = s.send(&packet.Packet{Type: packet.DISCONNECT})
}

// externalFloor is a floor relay someone else runs (--floor).
type externalFloor struct{ at *net.UDPAddr }

func (f externalFloor) addr() *net.UDPAddr { return f.at }
func (externalFloor) close()               {}

// benchRun measures one run over the server at addr (the broker or the floor relay).
func benchRun(ctx context.Context, addr *net.UDPAddr, o benchOpts, tag string) (roundResult, error) {
	var res roundResult
	id := fmt.Sprintf("mqb%d-%s", os.Getpid()%1000000, tag)

	subs := make([]*snConn, o.fanout)
	for k := range subs {
		sub, err := dialSN(addr, o.timeout)
		if err != nil {
			return res, err
		}
		defer sub.c.Close()
		if err := sub.connect(fmt.Sprintf("%ss%d", id, k)); err != nil {
			return res, fmt.Errorf("subscriber %d: %w", k, err)
		}
		defer sub.disconnect()
		err = sub.send(&packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(packet.QoS(o.qos)),
			MsgID: 1, TopicName: []byte(o.topic)})
		if err != nil {
			return res, err
		}
		var p packet.Packet
		if err := sub.await(packet.SUBACK, 1, &p); err != nil {
			return res, fmt.Errorf("subscriber %d: %w", k, err)
		}
		if p.ReturnCode != packet.Accepted {
			return res, fmt.Errorf("SUBACK: %v", p.ReturnCode)
		}
		subs[k] = sub
	}
	var p packet.Packet

	pub, err := dialSN(addr, o.timeout)
	if err != nil {
		return res, err
	}
	defer pub.c.Close()
	if err := pub.connect(id + "p"); err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	defer pub.disconnect()
	if err := pub.send(&packet.Packet{Type: packet.REGISTER, MsgID: 1, TopicName: []byte(o.topic)}); err != nil {
		return res, err
	}
	if err := pub.await(packet.REGACK, 1, &p); err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	if p.ReturnCode != packet.Accepted {
		return res, fmt.Errorf("REGACK: %v", p.ReturnCode)
	}
	topicID := p.TopicID

	recs := make([]*recorder, len(subs))
	var readerDone sync.WaitGroup
	for k, sub := range subs {
		recs[k] = newRecorder(o.n)
		readerDone.Add(1)
		go func() {
			defer readerDone.Done()
			recs[k].read(sub)
		}()
	}
	received := func() int {
		n := 0
		for _, r := range recs {
			n += int(r.unique.Load())
		}
		return n
	}

	sent, late, unacked, sendSpan, perr := publishPaced(ctx, pub, o, topicID, received)
	// Drain: wait for the last messages.
	deadline := time.Now().Add(o.timeout)
	for received() < sent*len(subs) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	// Stop the readers: a past deadline makes their Read return.
	for _, sub := range subs {
		_ = sub.c.SetReadDeadline(time.Unix(1, 0))
	}
	readerDone.Wait()
	for _, sub := range subs {
		_ = sub.c.SetReadDeadline(time.Time{})
	}
	if perr != nil {
		return res, perr
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res = mergeResults(recs, sent)
	res.Late, res.Unacked = late, unacked
	res.SendRate = rate(sent, sendSpan)
	return res, nil
}

// publishPaced publishes o.n messages at o.rate on a goroutine locked to its thread.
// With o.rate 0 it sends as fast as it can (QoS 1/2: as fast as the acks come). span is
// the time from the first send to the last.
//
// With o.window (QoS 0) a send also waits until fewer than o.window messages are out:
// sent but not yet received by every subscriber. A message that does not arrive within
// windowStall is given up for the window's sake (it still counts as lost at the end).
func publishPaced(ctx context.Context, pub *snConn, o benchOpts, topicID uint16, received func() int) (sent, late, unacked int, span time.Duration, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var interval time.Duration
		if o.rate > 0 {
			interval = time.Duration(float64(time.Second) / o.rate)
		}
		var first int64
		payload := make([]byte, o.size)
		q := packet.QoS(o.qos)
		pk := packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(q), TopicID: topicID, Data: payload}
		var ack packet.Packet
		var msgID uint16
		abandoned := 0 // deliveries given up on by the window
		next := monoNow()
		for i := 0; i < o.n; i++ {
			if ctx.Err() != nil {
				err = ctx.Err()
				return
			}
			// Sleep most of the way, then spin.
			for {
				d := time.Duration(next - monoNow())
				if d <= 0 {
					break
				}
				if d > spinWindow {
					preciseSleep(d - spinWindow)
				}
			}
			if o.window > 0 {
				waitWindow(o, sent, &abandoned, received)
			}
			if q > 0 {
				msgID++
				if msgID == 0 {
					msgID = 1
				}
				pk.MsgID = msgID
			}
			binary.BigEndian.PutUint64(payload, uint64(i))
			now := monoNow()
			if interval > 0 && time.Duration(now-next) > lateThreshold {
				late++
			}
			if i == 0 {
				first = now
			}
			span = time.Duration(now - first)
			binary.BigEndian.PutUint64(payload[8:], uint64(now))
			if err = pub.send(&pk); err != nil {
				return
			}
			sent++
			next += int64(interval)
			switch q {
			case packet.QoS1:
				if pub.await(packet.PUBACK, msgID, &ack) != nil {
					unacked++
				}
			case packet.QoS2:
				if pub.await(packet.PUBREC, msgID, &ack) != nil {
					unacked++
					break
				}
				if err = pub.send(&packet.Packet{Type: packet.PUBREL, MsgID: msgID}); err != nil {
					return
				}
				if pub.await(packet.PUBCOMP, msgID, &ack) != nil {
					unacked++
				}
			}
			// Closed loop: the next send waits for the ack, but is not late for it.
			if now := monoNow(); q > 0 && now > next {
				next = now
			}
		}
	}()
	<-done
	return
}

// windowStall is how long the window waits for a delivery before it gives up on the
// oldest outstanding ones (lost datagrams would otherwise close it for good).
const windowStall = 20 * time.Millisecond

// waitWindow returns once fewer than o.window messages are outstanding to every
// subscriber: sent·K − received − abandoned < window·K.
func waitWindow(o benchOpts, sent int, abandoned *int, received func() int) {
	k := o.fanout
	limit := o.window * k
	var since int64
	for {
		out := sent*k - received() - *abandoned
		if out < limit {
			return
		}
		now := monoNow()
		if since == 0 {
			since = now
		} else if time.Duration(now-since) > windowStall {
			*abandoned += out - limit + 1
			return
		}
		runtime.Gosched()
	}
}

// recorder is the subscriber's side: arrival times by sequence number.
type recorder struct {
	n           int
	first, last int64 // first and last receipt
	seen        []bool
	lat         []int64
	unique      atomic.Int64
	dup, reord  int
	maxSeq      int
}

func newRecorder(n int) *recorder {
	return &recorder{n: n, seen: make([]bool, n), lat: make([]int64, 0, n), maxSeq: -1}
}

// read runs until the socket's read fails (the deadline set to stop it).
func (r *recorder) read(s *snConn) {
	var p packet.Packet
	buf := make([]byte, 65536)
	for {
		n, err := s.c.Read(buf)
		now := monoNow()
		if err != nil {
			return
		}
		p.Reset()
		if packet.Decode(buf[:n], &p) != nil {
			continue
		}
		switch p.Type {
		case packet.PUBLISH:
			switch p.Flags.QoS() {
			case packet.QoS1:
				_ = s.send(&packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
			case packet.QoS2:
				_ = s.send(&packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
			}
			if len(p.Data) < payloadHeader {
				continue
			}
			seq := binary.BigEndian.Uint64(p.Data)
			ts := int64(binary.BigEndian.Uint64(p.Data[8:]))
			if seq >= uint64(r.n) {
				continue
			}
			i := int(seq)
			if r.seen[i] {
				r.dup++
				continue
			}
			r.seen[i] = true
			if r.first == 0 {
				r.first = now
			}
			r.last = now
			r.lat = append(r.lat, now-ts)
			if i < r.maxSeq {
				r.reord++
			}
			r.maxSeq = max(r.maxSeq, i)
			r.unique.Add(1)
		case packet.PUBREL:
			_ = s.send(&packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
		default:
			s.answer(&p)
		}
	}
}

func (r *recorder) result(sent int) roundResult {
	lat := append([]int64(nil), r.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	u := int(r.unique.Load())
	return roundResult{Sent: sent, Received: u, Lost: max(0, sent-u), Duplicated: r.dup, Reordered: r.reord, lat: lat,
		RecvRate: rate(u, time.Duration(r.last-r.first))}
}

// mergeResults combines the subscribers' recorders: with K subscribers a message
// sent is K deliveries expected, and the latency distribution is of every delivery.
func mergeResults(recs []*recorder, sent int) roundResult {
	if len(recs) == 1 {
		return recs[0].result(sent)
	}
	var res roundResult
	var first, last int64
	for _, r := range recs {
		one := r.result(sent)
		res.Sent += one.Sent
		res.Received += one.Received
		res.Lost += one.Lost
		res.Duplicated += one.Duplicated
		res.Reordered += one.Reordered
		res.lat = append(res.lat, one.lat...)
		if r.first != 0 && (first == 0 || r.first < first) {
			first = r.first
		}
		last = max(last, r.last)
	}
	res.Sent = sent // publishes; Received and Lost count deliveries
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	res.RecvRate = rate(res.Received, time.Duration(last-first))
	return res
}

// rate is n events over the span from the first to the last: (n-1)/span.
func rate(n int, span time.Duration) float64 {
	if n < 2 || span <= 0 {
		return 0
	}
	return float64(n-1) / span.Seconds()
}
