package kernel

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker/client"
	"github.com/musqratt/musqratt/latency"
)

// serveWithMetrics runs the kernel on a loopback port and returns its address and
// the Metrics OnServing handed over.
func serveWithMetrics(t *testing.T, conf string) (string, *Metrics) {
	t.Helper()
	cfg, err := ParseConfig("test.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Version = "v0.0.0-test"
	got := make(chan *Metrics, 1)
	cfg.OnServing = func(m *Metrics) { got <- m }
	srv := udp(t, "127.0.0.1:0")
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)
	select {
	case m := <-got:
		return srv.LocalAddr().String(), m
	case <-time.After(5 * time.Second):
		t.Fatal("OnServing not called")
		return "", nil
	}
}

type sysInbox struct {
	mu sync.Mutex
	v  map[string]string
}

func (s *sysInbox) add(m client.Message) {
	s.mu.Lock()
	s.v[m.Topic] = string(m.Payload)
	s.mu.Unlock()
}

func (s *sysInbox) get(topic string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.v[topic]
	return v, ok
}

func TestSysTopicsAndMetrics(t *testing.T) {
	addr, m := serveWithMetrics(t, "sys_interval 100ms\n")
	ctx := context.Background()
	in := &sysInbox{v: map[string]string{}}
	watcher, err := client.Dial(ctx, addr, client.Config{ClientID: "watcher", OnMessage: in.add})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if _, _, err := watcher.Subscribe(ctx, client.Name("$SYS/#"), 0); err != nil {
		t.Fatal(err)
	}
	// A plain # must not see $SYS (MQTT's rule for topics starting with $).
	plain := &sysInbox{v: map[string]string{}}
	other, err := client.Dial(ctx, addr, client.Config{ClientID: "plain", OnMessage: plain.add})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.Subscribe(ctx, client.Name("#"), 0); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := other.Publish(ctx, client.Name("load/x"), []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(topic string, ok func(string) bool) string {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if v, found := in.get(topic); found && ok(v) {
				return v
			}
		}
		v, _ := in.get(topic)
		t.Fatalf("%s: %q", topic, v)
		return ""
	}
	if v := waitFor("$SYS/broker/version", func(string) bool { return true }); v != "musqratt v0.0.0-test" {
		t.Errorf("version %q", v)
	}
	waitFor("$SYS/broker/clients/connected", func(v string) bool { return v == "2" })
	waitFor("$SYS/broker/publish/messages/received", func(v string) bool { n, _ := strconv.Atoi(v); return n >= 20 })
	waitFor("$SYS/broker/latency/end_to_end/count", func(v string) bool { n, _ := strconv.Atoi(v); return n > 0 })
	waitFor("$SYS/broker/uptime", func(v string) bool { return strings.HasSuffix(v, " seconds") })
	plain.mu.Lock()
	for topic := range plain.v {
		if strings.HasPrefix(topic, "$") {
			t.Errorf("# delivered %s", topic)
		}
	}
	plain.mu.Unlock()

	// The text dump: the counters and a non-empty end-to-end histogram with stages.
	var text bytes.Buffer
	if err := m.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	dump := text.String()
	for _, want := range []string{"musqratt, up ", `clients{state="active"}`, "publishes_received_total", "deliveries_total", `messages_received_total{type="PUBLISH"}`, "heap_bytes"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
	for _, h := range []string{"latency_end_to_end", "latency_received_decoded", "latency_decoded_matched", "latency_matched_queued", "latency_queued_sent"} {
		re := regexp.MustCompile(`(?m)^` + h + `\s+(\d+)\s`)
		mm := re.FindStringSubmatch(dump)
		if mm == nil || mm[1] == "0" {
			t.Errorf("histogram %s empty or missing:\n%s", h, dump)
		}
	}
	if st := m.Stats(); st.PublishesIn < 20 || st.Deliveries == 0 {
		t.Errorf("stats: %d publishes in, %d deliveries", st.PublishesIn, st.Deliveries)
	}

	var prom bytes.Buffer
	if err := m.WritePrometheus(&prom); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# TYPE musqratt_publishes_received_total counter", `musqratt_latency_end_to_end_seconds{quantile="0.99"}`, `musqratt_clients{state="active"} 2`} {
		if !strings.Contains(prom.String(), want) {
			t.Errorf("prometheus lacks %q", want)
		}
	}

	// Reset zeroes the counters shown and the histograms; gauges stay.
	m.Reset()
	if st := m.Stats(); st.PublishesIn != 0 || st.ClientsByState[0] != 2 {
		t.Errorf("after reset: %d publishes, %d active", st.PublishesIn, st.ClientsByState[0])
	}
	var hs []latency.NamedHistogram
	if hs = m.AppendHistograms(hs); hs[0].Snap.Count() != 0 {
		t.Errorf("end-to-end histogram holds %d after reset", hs[0].Snap.Count())
	}
}

func TestSysOff(t *testing.T) {
	addr, _ := serveWithMetrics(t, "sys_interval off\n")
	in := &sysInbox{v: map[string]string{}}
	c, err := client.Dial(context.Background(), addr, client.Config{ClientID: "w", OnMessage: in.add})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Subscribe(context.Background(), client.Name("$SYS/#"), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.v) != 0 {
		t.Errorf("sys_interval off published %v", in.v)
	}
}
