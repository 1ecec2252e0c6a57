package kernel

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
)

func TestConsoleCommands(t *testing.T) {
	addr, m := serveWithMetrics(t, "sys_interval off\n")
	ctx := context.Background()
	c, err := client.Dial(ctx, addr, client.Config{ClientID: "console-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(ctx, client.Name("a/b"), []byte("x"), 1, false); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	Console(ctx, m, strings.NewReader("clients\nstats\nreset\nstats\nbogus\nhelp\n\n"), &out, 0)
	got := out.String()
	for _, want := range []string{
		"clients: active 1 asleep 0 awake 0 disconnected 0 lost 0 (total 1)",
		"counters and latency histograms reset",
		`unknown command "bogus"; commands: stats`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("console output lacks %q:\n%s", want, got)
		}
	}
	// The first dump counts the publish; after reset the second shows 0.
	i := strings.Index(got, "counters and latency histograms reset")
	if !regexp.MustCompile(`publishes_received_total\s+1\n`).MatchString(got[:i]) {
		t.Errorf("first dump:\n%s", got[:i])
	}
	if !regexp.MustCompile(`publishes_received_total\s+0\n`).MatchString(got[i:]) {
		t.Errorf("after reset:\n%s", got[i:])
	}
}

func TestConsolePeriodicDump(t *testing.T) {
	_, m := serveWithMetrics(t, "sys_interval off\n")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan struct{})
	go func() { Console(ctx, m, nil, &out, 20*time.Millisecond); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); strings.Count(out.String(), "== musqratt") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic dumps:\n%s", out.String())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Console did not return after cancel")
	}
}
