package kernel

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
)

// fakeUpstream records what the engine forwards and delivers what the test sends.
type fakeUpstream struct {
	mu        sync.Mutex
	forwarded []string
	deliver   chan func(topic string, payload []byte, qos int8, retain bool) bool
}

func (f *fakeUpstream) Run(ctx context.Context, deliver func(string, []byte, int8, bool) bool) error {
	f.deliver <- deliver
	<-ctx.Done()
	return nil
}

func (f *fakeUpstream) Forward(topic string, payload []byte, qos int8, retain bool) {
	f.mu.Lock()
	f.forwarded = append(f.forwarded, topic+" "+string(payload))
	f.mu.Unlock()
}

func (f *fakeUpstream) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.forwarded...)
}

func TestUpstreamBothWaysWithoutLoops(t *testing.T) {
	cfg, err := ParseConfig("test.conf", strings.NewReader("sys_interval off\n"))
	if err != nil {
		t.Fatal(err)
	}
	up := &fakeUpstream{deliver: make(chan func(string, []byte, int8, bool) bool, 1)}
	cfg.Upstream = up
	cfg.UpstreamQueue = 3
	srv := udp(t, "127.0.0.1:0")
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)
	deliver := <-up.deliver

	ctx := context.Background()
	got := make(chan client.Message, 10)
	c, err := client.Dial(ctx, srv.LocalAddr().String(), client.Config{ClientID: "local", OnMessage: func(m client.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Subscribe(ctx, client.Name("#"), 1); err != nil {
		t.Fatal(err)
	}
	// Local → upstream: forwarded once, and delivered locally too.
	if err := c.Publish(ctx, client.Name("up/x"), []byte("from sensor"), 1, false); err != nil {
		t.Fatal(err)
	}
	if m := <-got; string(m.Payload) != "from sensor" {
		t.Errorf("local delivery %q", m.Payload)
	}
	// Upstream → local: delivered, and not forwarded back up.
	if !deliver("down/y", []byte("from cloud"), 1, false) {
		t.Fatal("deliver refused with an empty queue")
	}
	select {
	case m := <-got:
		if m.Topic != "down/y" || string(m.Payload) != "from cloud" {
			t.Errorf("from upstream: %q %q", m.Topic, m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message from upstream not delivered (no Wake?)")
	}
	if fw := up.seen(); len(fw) != 1 || fw[0] != "up/x from sensor" {
		t.Errorf("forwarded %q; want only the local publication", fw)
	}
	// An invalid topic from upstream is logged, not fatal.
	deliver("bad/+/topic", nil, 0, false)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "not delivered"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for a bad upstream topic:\n%s", logs.String())
		}
	}
}

// The queue is bounded: deliver says no instead of growing without limit.
func TestInboundQueueBound(t *testing.T) {
	wakes := 0
	q := &inboundQueue{max: 2, wake: func() { wakes++ }}
	if !q.deliver("a", []byte("1"), 0, false) || !q.deliver("a", []byte("2"), 0, false) {
		t.Fatal("refused below the bound")
	}
	if q.deliver("a", []byte("3"), 0, false) {
		t.Error("accepted past the bound")
	}
	if wakes != 1 {
		t.Errorf("%d wake-ups for one batch", wakes)
	}
	batch := q.take()
	if len(batch) != 2 || string(batch[1].payload) != "2" {
		t.Errorf("batch %+v", batch)
	}
	q.give(batch)
	if !q.deliver("a", []byte("4"), 0, false) || wakes != 2 {
		t.Errorf("after draining: wakes %d", wakes)
	}
}
