package qemu

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
)

func TestMX6ULLEVKBroker(t *testing.T) { testBroker(t, MX6ULLEVK) }

func TestUSBArmoryBroker(t *testing.T) { testBroker(t, USBArmory) }

func TestMicrovmBroker(t *testing.T) { testBroker(t, Microvm) }

// inbox collects what a client receives.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Message
}

func (b *inbox) add(m client.Message) { b.mu.Lock(); b.msgs = append(b.msgs, m); b.mu.Unlock() }

func (b *inbox) waitFor(t *testing.T, what string, ok func([]client.Message) bool) []client.Message {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		msgs := slices.Clone(b.msgs)
		b.mu.Unlock()
		if ok(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d messages: %+v", what, len(msgs), msgs)
		}
	}
}

func (b *inbox) payloads() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var p []string
	for _, m := range b.msgs {
		p = append(p, string(m.Payload))
	}
	return p
}

// testBroker boots m's image and runs the integration suite through the forwarded
// UDP port with the MQTT-SN client library: every QoS and topic kind, wildcards,
// retained, will, sleep and wake; then a timed batch, and the serial metrics dump.
func testBroker(t *testing.T, m Machine) {
	in := bootImage(t, m, "-X", "main.DumpEvery=4s")
	addr := in.Addr.String()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dial := func(id string, mod func(*client.Config)) *client.Client {
		t.Helper()
		// The first datagrams after boot can be lost while the guest resolves the
		// host's address: generous retries.
		cfg := client.Config{ClientID: id, RetryInterval: 2 * time.Second, Retries: 5}
		if mod != nil {
			mod(&cfg)
		}
		c, err := client.Dial(ctx, addr, cfg)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Warm up: the guest's first replies wait for it to resolve the host's address, and
	// under TCG its first moments are slow; a resent SUBSCRIBE or PUBLISH would make
	// the exact checks below see legitimate duplicates.
	warm := dial("img-warm", func(c *client.Config) { c.RetryInterval, c.Retries = 500*time.Millisecond, 60 })
	for range 3 {
		if err := warm.Ping(ctx); err != nil {
			t.Fatalf("warm-up ping: %v", err)
		}
	}
	warm.Disconnect(ctx)

	// Every QoS and topic kind, a wildcard, QoS -1.
	subIn := &inbox{}
	sub := dial("img-sub", func(c *client.Config) { c.OnMessage = subIn.add })
	for _, s := range []struct {
		t client.Topic
		q packet.QoS
	}{{client.Name("a/+/c"), 2}, {client.Short("zz"), 1}} {
		if _, _, err := sub.Subscribe(ctx, s.t, s.q); err != nil {
			t.Fatal(err)
		}
	}
	pub := dial("img-pub", nil)
	for q := range packet.QoS(3) {
		if err := pub.Publish(ctx, client.Name("a/b/c"), []byte(fmt.Sprint("qos", q)), q, false); err != nil {
			t.Fatalf("publish QoS %d: %v", q, err)
		}
	}
	if err := pub.Publish(ctx, client.Short("zz"), []byte("short"), 1, false); err != nil {
		t.Fatal(err)
	}
	subIn.waitFor(t, "every QoS", func(m []client.Message) bool { return len(m) >= 4 })
	conn := rawConn(t, addr)
	if err := client.PublishQoSMinus1(conn, client.Short("zz"), []byte("minus1"), false); err != nil {
		t.Fatal(err)
	}
	subIn.waitFor(t, "QoS -1", func(m []client.Message) bool {
		return slices.ContainsFunc(m, func(x client.Message) bool { return string(x.Payload) == "minus1" })
	})
	// Under load (TCG on a busy host) a QoS 1 PUBLISH may be resent, and QoS 1 allows
	// its duplicate; QoS 0, -1 and 2 must arrive once.
	var distinct []string
	count := map[string]int{}
	for _, p := range subIn.payloads() {
		if count[p]++; count[p] == 1 {
			distinct = append(distinct, p)
		}
	}
	if got := strings.Join(distinct, ","); got != "qos0,qos1,qos2,short,minus1" {
		t.Errorf("deliveries %s (all: %q)", got, subIn.payloads())
	}
	for _, once := range []string{"qos0", "qos2", "minus1"} {
		if count[once] != 1 {
			t.Errorf("%s delivered %d times, want once", once, count[once])
		}
	}

	// Retained, and a will on a client that stops answering.
	if err := pub.Publish(ctx, client.Name("state/door"), []byte("open"), 1, true); err != nil {
		t.Fatal(err)
	}
	willIn := &inbox{}
	watcher := dial("img-watch", func(c *client.Config) { c.OnMessage = willIn.add })
	if _, _, err := watcher.Subscribe(ctx, client.Name("state/#"), 1); err != nil {
		t.Fatal(err)
	}
	willIn.waitFor(t, "retained", func(m []client.Message) bool { return len(m) >= 1 && m[0].Retain && string(m[0].Payload) == "open" })
	dying := dial("img-dying", func(c *client.Config) {
		c.KeepAlive = time.Second
		c.Will = &client.Will{Topic: "state/dying", Payload: []byte("gone"), QoS: 1}
	})
	dying.Close()
	willIn.waitFor(t, "will", func(m []client.Message) bool { return len(m) >= 2 && string(m[1].Payload) == "gone" })

	// Sleep and wake.
	sleepIn := &inbox{}
	sleeper := dial("img-sleeper", func(c *client.Config) { c.Persistent = true; c.OnMessage = sleepIn.add })
	if _, _, err := sleeper.Subscribe(ctx, client.Name("night/owl"), 1); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Sleep(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pub.Publish(ctx, client.Name("night/owl"), []byte(fmt.Sprint("hoot", i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(sleepIn.payloads()); n != 0 {
		t.Errorf("%d messages delivered to a sleeping client", n)
	}
	if err := sleeper.Wake(ctx); err != nil {
		t.Fatal(err)
	}
	sleepIn.waitFor(t, "wake", func(m []client.Message) bool { return len(m) >= 3 })

	// A timed batch: QoS 1 publish → PUBACK round trips, and all delivered.
	const n = 500
	batchIn := &inbox{}
	bsub := dial("img-bsub", func(c *client.Config) { c.OnMessage = batchIn.add })
	if _, _, err := bsub.Subscribe(ctx, client.Name("bench/x"), 1); err != nil {
		t.Fatal(err)
	}
	var rtts []time.Duration
	for i := range n {
		t0 := time.Now()
		if err := pub.Publish(ctx, client.Name("bench/x"), []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	batchIn.waitFor(t, "batch", func(m []client.Message) bool { return len(m) >= n })
	slices.Sort(rtts)
	q := func(p float64) time.Duration { return rtts[int(p*float64(len(rtts)-1))] }
	t.Logf("%s: %d QoS 1 publishes through QEMU's forwarded port, all delivered; PUBACK round trip p50 %v p90 %v p99 %v max %v",
		m.Board, n, q(0.5), q(0.9), q(0.99), rtts[len(rtts)-1])

	// The serial console: ask for the dump where the board reads its console, else
	// wait for the periodic one; it must count what was just published.
	mark := len(in.Console())
	if m.Board != "microvm" {
		if err := in.Send("stats"); err != nil {
			t.Fatal(err)
		}
	}
	pubRE := regexp.MustCompile(`publishes_received_total\s+(\d+)`)
	var dump string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c := in.Console()[mark:]
		if i := strings.LastIndex(c, "== musqratt on "); i >= 0 && strings.Contains(c[i:], "latency_queued_sent") {
			dump = c[i:]
			if j := strings.Index(dump, "latency_queued_sent"); j >= 0 {
				if k := strings.IndexByte(dump[j:], '\n'); k >= 0 {
					dump = dump[:j+k+1]
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics dump on the console")
		}
	}
	mm := pubRE.FindStringSubmatch(dump)
	if mm == nil {
		t.Fatalf("dump lacks publishes_received_total:\n%s", dump)
	}
	if v, _ := strconv.Atoi(mm[1]); v < n+8 {
		t.Errorf("dump counts %d publishes, want at least %d", v, n+8)
	}
	t.Logf("serial metrics dump after the batch:\n%s", dump)
	if m.Board != "microvm" {
		mark = len(in.Console())
		in.Send("clients")
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(in.Console()[mark:], "clients: active"); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no answer to the clients command")
			}
		}
	}
}

func rawConn(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
