package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestBenchQoS2TailIsNotTheBenchs: the bench's own scheduling must not put 10 ms into
// QoS 1/2 latencies (docs/performance.md, "Where the QoS 1/2 tails come from"). When the
// paced publisher's acknowledgement wait parked in Go's network poller, the thread that
// woke it handed it to its locked thread and slept, and nothing polled the network until
// the publisher parked again: the subscriber's goroutine then read its deliveries only at
// sysmon's forced poll, 10 ms later, and with one QoS 2 delivery in flight per client the
// broker held every later message behind the late PUBREC. Measured against the broker
// that way, a tenth of the messages took more than 8 ms; the probe's figures for the same
// broker, and the bench since, are under 1%.
func TestBenchQoS2TailIsNotTheBenchs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the broker and a 1 s bench")
	}
	if runtime.GOOS != "linux" {
		t.Skip("readWait waits in the kernel only on Linux")
	}
	port := startBroker(t)
	o := benchOpts{n: 1000, rate: 1000, size: 32, qos: 2, topic: "musqratt/bench-tails", timeout: 2 * time.Second, fanout: 1}
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	// A machine whose two vCPUs are both busy gives some runs a few ms to some messages
	// (a CPU-bound loop on each vCPU: one run in three with 3% over 8 ms); the bench's own
	// stall gave 8-16 ms to one message in ten in every run. So: any of three runs.
	var report string
	for attempt := 1; attempt <= 3; attempt++ {
		res, err := benchRun(context.Background(), addr, o, fmt.Sprintf("tails%d", attempt))
		if err != nil {
			t.Fatal(err)
		}
		if res.Lost != 0 || res.Unacked != 0 {
			t.Fatalf("lost %d, unacked %d", res.Lost, res.Unacked)
		}
		slow := 0
		for _, l := range res.lat {
			if time.Duration(l) > 8*time.Millisecond {
				slow++
			}
		}
		report = fmt.Sprintf("%d of %d QoS 2 messages took more than 8 ms (p99 %v)", slow, len(res.lat), time.Duration(quantileOf(res.lat, 0.99)))
		if slow <= len(res.lat)/100 {
			t.Logf("run %d: %s", attempt, report)
			return
		}
		t.Logf("run %d: %s", attempt, report)
	}
	t.Errorf("in each of 3 runs, more than 1%% of the messages took more than 8 ms; the last: %s", report)
}
