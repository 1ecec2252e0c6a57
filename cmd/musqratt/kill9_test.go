package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
)

// kill -9 mid-stream, 200 times: a publisher sends numbered QoS 1 messages to a
// persistent-session subscriber while the daemon (state file, strict durability) is
// killed at a random moment; it is restarted on the same port and the subscriber
// resumes its session. Every message the broker acknowledged (PUBACK) must reach the
// subscriber at least once: acknowledged-and-lost must be 0.
func TestReliabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	bin := daemonBinary(t)
	state := filepath.Join(t.TempDir(), "state.journal")
	conf := writeConf(t, fmt.Sprintf("state_file %s\ndurability strict\nsys_interval off\nretry_interval 200ms\nmax_queued_per_client 100000\n", state))
	port := freeUDPPort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	addr := listen
	rng := rand.New(rand.NewPCG(42, 7))

	var mu sync.Mutex
	acked := map[uint64]bool{}
	delivered := map[uint64]int{}
	onMessage := func(m client.Message) {
		if len(m.Payload) < 8 {
			return
		}
		mu.Lock()
		delivered[binary.BigEndian.Uint64(m.Payload)]++
		mu.Unlock()
	}
	subCfg := client.Config{ClientID: "k9-sub", Persistent: true, OnMessage: onMessage,
		RetryInterval: 100 * time.Millisecond, Retries: 3, KeepAlive: time.Minute}
	pubCfg := client.Config{ClientID: "k9-pub", RetryInterval: 100 * time.Millisecond, Retries: 1, KeepAlive: time.Minute}

	var seq uint64
	for cycle := range *kill9Cycles {
		d := startDaemon(t, bin, conf, listen)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sub, err := client.Dial(ctx, addr, subCfg)
		if err != nil {
			cancel()
			d.kill9()
			t.Fatalf("cycle %d: subscriber: %v\n%s", cycle, err, d.logs.String())
		}
		if cycle == 0 {
			if _, _, err := sub.Subscribe(ctx, client.Name("crash/t"), 1); err != nil {
				t.Fatal(err)
			}
		}
		pub, err := client.Dial(ctx, addr, pubCfg)
		if err != nil {
			t.Fatalf("cycle %d: publisher: %v", cycle, err)
		}
		// Publish until the kill, which comes 0-40 ms in: sometimes before the first
		// publish, sometimes mid-burst.
		killAt := time.Duration(rng.Int64N(int64(40 * time.Millisecond)))
		timer := time.AfterFunc(killAt, d.kill9)
		payload := make([]byte, 8)
		for {
			seq++
			binary.BigEndian.PutUint64(payload, seq)
			err := pub.Publish(ctx, client.Name("crash/t"), payload, 1, false)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) && !errors.Is(err, client.ErrTimeout) && !errors.Is(err, client.ErrLost) && !errors.Is(err, client.ErrClosed) {
					t.Logf("cycle %d: publish: %v", cycle, err)
				}
				break
			}
			mu.Lock()
			acked[seq] = true
			mu.Unlock()
		}
		timer.Stop()
		d.kill9()
		pub.Close()
		sub.Close()
		cancel()
	}

	// A last start: the subscriber resumes and collects what is still queued for it.
	d := startDaemon(t, bin, conf, listen)
	defer d.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := client.Dial(ctx, addr, subCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	missing := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for s := range acked {
			if delivered[s] == 0 {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); missing() > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	mu.Lock()
	defer mu.Unlock()
	dups, unackedDelivered := 0, 0
	for s, n := range delivered {
		if n > 1 {
			dups += n - 1
		}
		if !acked[s] {
			unackedDelivered++
		}
	}
	lost := 0
	for s := range acked {
		if delivered[s] == 0 {
			lost++
		}
	}
	t.Logf("%d kill -9 cycles: %d publishes tried, %d acknowledged, %d delivered (%d duplicates, %d delivered though unacknowledged), %d acknowledged and lost; the daemon restarted from its state file every time",
		*kill9Cycles, seq, len(acked), len(delivered), dups, unackedDelivered, lost)
	if lost != 0 {
		t.Errorf("%d acknowledged QoS 1 messages lost across kill -9 (want 0)\n%s", lost, d.logs.String())
	}
	if len(acked) == 0 {
		t.Error("no publish was ever acknowledged: the test did not exercise anything")
	}
}
