package kernel

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/broker/packet"
)

// The whole path on real sockets: clients ↔ an impairing UDP proxy ↔ the kernel's
// broker. The deterministic virtual-time simulation (broker/lossy_sim_test.go) covers
// many seeds and 100k messages; this covers what only real sockets have: the driver,
// the socket buffers, wall-clock timers racing the network.
var (
	lossyMessages = flag.Int("lossy.messages", 15, "messages per QoS per publisher in TestLossyUDPProxy")
	lossySeed     = flag.Uint64("lossy.seed", 1, "seed of the proxy's impairments")
)

// impairment is what the proxy does to each datagram, in both directions.
type impairment struct {
	loss, dup float64       // probabilities
	maxDelay  time.Duration // uniform 0..maxDelay: reorders what it delays differently
}

// lossyProxy relays between clients and the broker, impairing every datagram. Each
// client gets its own upstream socket, so the broker sees one address per client.
type lossyProxy struct {
	front  *net.UDPConn
	broker netip.AddrPort
	imp    impairment
	mu     sync.Mutex
	rng    *rand.Rand
	ups    map[netip.AddrPort]*net.UDPConn
	wg     sync.WaitGroup
	closed atomic.Bool

	sent, dropped, duplicated atomic.Int64
}

func newLossyProxy(t *testing.T, brokerAddr netip.AddrPort, imp impairment, seed uint64) *lossyProxy {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{front: front, broker: brokerAddr, imp: imp, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ups: map[netip.AddrPort]*net.UDPConn{}}
	p.wg.Add(1)
	go p.fromClients()
	t.Cleanup(p.close)
	return p
}

func (p *lossyProxy) addr() string { return p.front.LocalAddr().String() }

func (p *lossyProxy) close() {
	p.closed.Store(true)
	p.front.Close()
	p.mu.Lock()
	for _, u := range p.ups {
		u.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// impair decides a datagram's fate: how many copies, each after its own delay.
func (p *lossyProxy) impair() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() < p.imp.loss {
		p.dropped.Add(1)
		return nil
	}
	n := 1
	if p.rng.Float64() < p.imp.dup {
		n = 2
		p.duplicated.Add(1)
	}
	delays := make([]time.Duration, n)
	for i := range delays {
		if p.imp.maxDelay > 0 {
			delays[i] = time.Duration(p.rng.Int64N(int64(p.imp.maxDelay)))
		}
	}
	return delays
}

func (p *lossyProxy) deliver(b []byte, send func([]byte)) {
	for _, d := range p.impair() {
		c := append([]byte(nil), b...)
		p.sent.Add(1)
		if d == 0 {
			send(c)
			continue
		}
		time.AfterFunc(d, func() {
			if !p.closed.Load() {
				send(c)
			}
		})
	}
}

func (p *lossyProxy) fromClients() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		up, ok := p.ups[from]
		if !ok {
			up, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				p.mu.Unlock()
				continue
			}
			p.ups[from] = up
			p.wg.Add(1)
			go p.fromBroker(up, from)
		}
		p.mu.Unlock()
		p.deliver(buf[:n], func(b []byte) { up.WriteToUDPAddrPort(b, p.broker) })
	}
}

func (p *lossyProxy) fromBroker(up *net.UDPConn, client netip.AddrPort) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := up.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.deliver(buf[:n], func(b []byte) { p.front.WriteToUDPAddrPort(b, client) })
	}
}

// 20% loss and 5% duplication both ways, 0-20 ms of delay (so reordering): every QoS 1
// message arrives at least once and every QoS 2 message exactly once, from several
// publishers at once; QoS 0 loss is counted and reported.
func TestLossyUDPProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cfg, err := ParseConfig("lossy.conf", strings.NewReader("sys_interval off\nretry_interval 150ms\nmax_retries 30\n# the subscriber falls behind the publishers under loss: queue rather than drop\nmax_queued_per_client 1000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := udp(t, "127.0.0.1:0")
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)
	imp := impairment{loss: 0.20, dup: 0.05, maxDelay: 20 * time.Millisecond}
	proxy := newLossyProxy(t, local(srv), imp, *lossySeed)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ccfg := func(id string) client.Config {
		// T_RETRY above the worst round trip (2 × 20 ms), enough retries that 20% loss
		// each way never exhausts them in practice (0.36^31).
		return client.Config{ClientID: id, RetryInterval: 100 * time.Millisecond, Retries: 30, KeepAlive: time.Minute}
	}
	var mu sync.Mutex
	got := map[string]int{}
	sc := ccfg("lossy-sub")
	sc.Persistent = true
	sc.OnMessage = func(m client.Message) {
		mu.Lock()
		got[string(m.Payload)]++
		mu.Unlock()
	}
	sub, err := client.Dial(ctx, proxy.addr(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, _, err := sub.Subscribe(ctx, client.Name("lossy/#"), 2); err != nil {
		t.Fatal(err)
	}

	const publishers = 3
	n := *lossyMessages
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for pi := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, err := client.Dial(ctx, proxy.addr(), ccfg(fmt.Sprintf("lossy-pub%d", pi)))
			if err != nil {
				errs <- err
				return
			}
			defer pub.Close()
			for i := range n {
				for _, q := range []packet.QoS{0, 1, 2} {
					payload := fmt.Appendf(nil, "q%d-p%d-%d", q, pi, i)
					if err := pub.Publish(ctx, client.Name(fmt.Sprintf("lossy/p%d", pi)), payload, q, false); err != nil {
						errs <- fmt.Errorf("publisher %d message %d QoS %d: %w", pi, i, q, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Wait for the QoS 1 and 2 deliveries still in retransmission.
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for pi := range publishers {
			for i := range n {
				for _, q := range []int{1, 2} {
					if got[fmt.Sprintf("q%d-p%d-%d", q, pi, i)] == 0 {
						return false
					}
				}
			}
		}
		return true
	}
	// The subscriber gets one QoS 1/2 message in flight at a time (the spec's rule),
	// so under this loss its queue drains for a while after the publishers finish:
	// wait as long as deliveries keep coming.
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	last, lastChange := count(), time.Now()
	for !complete() && time.Since(lastChange) < 5*time.Second {
		time.Sleep(50 * time.Millisecond)
		if c := count(); c != last {
			last, lastChange = c, time.Now()
		}
	}
	time.Sleep(200 * time.Millisecond) // late duplicates, if any, would arrive now

	mu.Lock()
	defer mu.Unlock()
	var lost, dups [3]int
	for pi := range publishers {
		for i := range n {
			for q := range 3 {
				c := got[fmt.Sprintf("q%d-p%d-%d", q, pi, i)]
				if c == 0 {
					lost[q]++
				}
				if c > 1 {
					dups[q] += c - 1
				}
			}
		}
	}
	total := publishers * n
	t.Logf("proxy: %d datagrams relayed, %d dropped, %d duplicated (loss %.0f%%, dup %.0f%%, delay 0-%v, seed %d)",
		proxy.sent.Load(), proxy.dropped.Load(), proxy.duplicated.Load(), imp.loss*100, imp.dup*100, imp.maxDelay, *lossySeed)
	for q := range 3 {
		t.Logf("QoS %d: %d sent, %d lost, %d duplicated", q, total, lost[q], dups[q])
	}
	if lost[1] != 0 || lost[2] != 0 || dups[2] != 0 {
		t.Logf("broker log:\n%s", logs.String())
		t.Errorf("QoS 1 lost %d; QoS 2 lost %d, duplicated %d (want 0)", lost[1], lost[2], dups[2])
	}
	if lost[0] == 0 && total > 50 {
		t.Errorf("QoS 0: nothing lost at 20%% loss: is the proxy impairing?")
	}
}
