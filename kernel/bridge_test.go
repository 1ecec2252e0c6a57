package kernel

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/musqratt/musqratt/broker/client"
)

// startMosquittoForKernel runs Debian's mosquitto on a free loopback port, or skips
// saying plainly that the test was not run.
func startMosquittoForKernel(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, serr := os.Stat(bin); serr != nil {
			t.Skip("NOT RUN: mosquitto is not installed (make deps installs Debian's mosquitto)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	_, port, _ := net.SplitHostPort(addr)
	// set_tcp_nodelay: Mosquitto leaves Nagle on by default, which holds its small
	// sends to the MQTT subscriber for up to ~40 ms; the figures are the path, not that.
	os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nlog_dest none\n"), 0o644)
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
	}
}

// bridgedNode runs a kernel whose bridge publishes sensors/# upstream under
// node/ and delivers cmd/node/# from upstream, stripped of cmd/node/.
func bridgedNode(t *testing.T, upstream, node string) string {
	t.Helper()
	addr, _ := bridgedNodeMetrics(t, upstream, node)
	return addr
}

// bridgedNodeMetrics is bridgedNode, also returning the node's metrics once it serves.
func bridgedNodeMetrics(t *testing.T, upstream, node string) (string, func() *Metrics) {
	t.Helper()
	conf := fmt.Sprintf("sys_interval off\nbridge address %s\nbridge client_id %s\nbridge out sensors/# 1 %s/\nbridge in cmd/%s/# 1 cmd/%s/\nbridge in shared/# 1\n",
		upstream, node, node, node, node)
	cfg, err := ParseConfig(node+".conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var m *Metrics
	cfg.OnServing = func(mm *Metrics) { mu.Lock(); m = mm; mu.Unlock() }
	srv := udp(t, "127.0.0.1:0")
	var logs syncBuffer
	runKernel(t, cfg, &logs, srv)
	return srv.LocalAddr().String(), func() *Metrics { mu.Lock(); defer mu.Unlock(); return m }
}

// metricValue is the value of the metric name with the given labels in m's metrics.
func metricValue(m *Metrics, name string, labels ...[2]string) (float64, bool) {
	for _, x := range m.AppendMetrics(nil) {
		if x.Name == name && slices.Equal(x.Labels, labels) {
			return x.Value, true
		}
	}
	return 0, false
}

// Two MusQraTT nodes bridged to one Mosquitto: a sensor's publish on node A reaches an
// MQTT subscriber and, through the `shared/` rule, an MQTT-SN subscriber on node B;
// an MQTT publish reaches node A's MQTT-SN subscriber; nothing loops back.
func TestTwoNodesBridgedThroughMosquitto(t *testing.T) {
	upstream := startMosquittoForKernel(t)
	a, metricsA := bridgedNodeMetrics(t, upstream, "edge-a")
	b := bridgedNode(t, upstream, "edge-b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	var mqttGot []string
	mq := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(upstream).SetClientID("mqtt-app"))
	if tok := mq.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer mq.Disconnect(100)
	mq.Subscribe("#", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		mqttGot = append(mqttGot, m.Topic()+" "+string(m.Payload()))
		mu.Unlock()
	}).Wait()

	inbox := func() (func(client.Message), func() []string) {
		var mu sync.Mutex
		var got []string
		return func(m client.Message) {
				mu.Lock()
				got = append(got, m.Topic+" "+string(m.Payload))
				mu.Unlock()
			}, func() []string {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(got)
			}
	}
	onA, gotA := inbox()
	onB, gotB := inbox()
	subA, err := client.Dial(ctx, a, client.Config{ClientID: "sub-a", OnMessage: onA})
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	subB, err := client.Dial(ctx, b, client.Config{ClientID: "sub-b", OnMessage: onB})
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	for _, s := range []*client.Client{subA, subB} {
		if _, _, err := s.Subscribe(ctx, client.Name("#"), 1); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the bridges' upstream subscriptions

	sensorA, err := client.Dial(ctx, a, client.Config{ClientID: "sensor-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer sensorA.Close()
	if err := sensorA.Publish(ctx, client.Name("sensors/temp"), []byte("21.5"), 1, false); err != nil {
		t.Fatal(err)
	}
	// An MQTT application commands node A, and shares a value with both nodes.
	mq.Publish("cmd/edge-a/valve", 1, false, "close").Wait()
	mq.Publish("shared/config", 1, false, "v2").Wait()

	waitFor := func(what string, get func() []string, want ...string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := get()
			ok := true
			for _, w := range want {
				ok = ok && slices.Contains(got, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: got %q, want %q", what, got, want)
			}
		}
	}
	waitFor("MQTT subscriber", func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(mqttGot) },
		"edge-a/sensors/temp 21.5", "cmd/edge-a/valve close", "shared/config v2")
	waitFor("node A's MQTT-SN subscriber", gotA, "sensors/temp 21.5", "valve close", "shared/config v2")
	waitFor("node B's MQTT-SN subscriber", gotB, "shared/config v2")
	time.Sleep(300 * time.Millisecond)
	// No loops: the command delivered to node A is not sent back up (it would reappear
	// upstream as edge-a/...), and node B never saw node A's sensor or command.
	mu.Lock()
	for _, m := range mqttGot {
		if strings.HasPrefix(m, "edge-a/valve") || strings.HasPrefix(m, "edge-a/shared") || strings.HasPrefix(m, "edge-b/") {
			t.Errorf("looped upstream: %s", m)
		}
	}
	mu.Unlock()
	for _, m := range gotB() {
		if m != "shared/config v2" {
			t.Errorf("node B got %q", m)
		}
	}
	// The bridge's numbers are in the node's metrics (dump, /metrics, status page).
	ma := metricsA()
	for _, c := range []struct {
		name  string
		label [][2]string
		min   float64
	}{
		{"bridge_connected", nil, 1},
		{"bridge_forwarded_total", nil, 1},
		{"bridge_delivered_total", nil, 2},
		{"bridge_dropped_total", [][2]string{{"direction", "out"}}, 0},
	} {
		v, ok := metricValue(ma, c.name, c.label...)
		if !ok || v < c.min {
			t.Errorf("node A metric %s%v = %v (present %v), want at least %v", c.name, c.label, v, ok, c.min)
		}
	}
}

// TestBridgeLatencyReport measures, in one run, local MQTT-SN delivery on a node and
// the bridged path sensor → MusQraTT → Mosquitto → MQTT subscriber, for the same
// publishes; it reports the figures (speed is for the report, not an assertion).
func TestBridgeLatencyReport(t *testing.T) {
	upstream := startMosquittoForKernel(t)
	a := bridgedNode(t, upstream, "edge-a")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 300
	start := time.Now()
	stamp := func(b []byte) time.Duration { return time.Since(start) - time.Duration(binary.BigEndian.Uint64(b)) }
	var mu sync.Mutex
	var local, bridged []time.Duration
	mq := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(upstream).SetClientID("mqtt-lat"))
	if tok := mq.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer mq.Disconnect(100)
	mq.Subscribe("edge-a/sensors/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		d := stamp(m.Payload())
		mu.Lock()
		bridged = append(bridged, d)
		mu.Unlock()
	}).Wait()
	sub, err := client.Dial(ctx, a, client.Config{ClientID: "lat-sub", OnMessage: func(m client.Message) {
		d := stamp(m.Payload)
		mu.Lock()
		local = append(local, d)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, _, err := sub.Subscribe(ctx, client.Name("sensors/#"), 1); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Dial(ctx, a, client.Config{ClientID: "lat-pub"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	buf := make([]byte, 8)
	for range n {
		binary.BigEndian.PutUint64(buf, uint64(time.Since(start)))
		if err := pub.Publish(ctx, client.Name("sensors/t"), buf, 1, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := len(local) >= n && len(bridged) >= n
		mu.Unlock()
		if done {
			break
		}
	}
	mu.Lock()
	q := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1))].Round(time.Microsecond)
	}
	t.Logf("%d QoS 1 publishes at 500/s, one run: local MQTT-SN delivery p50 %v p99 %v max %v (%d received); bridged to an MQTT subscriber via Mosquitto p50 %v p99 %v max %v (%d received)",
		n, q(local, 0.5), q(local, 0.99), q(local, 1), len(local), q(bridged, 0.5), q(bridged, 0.99), q(bridged, 1), len(bridged))
	if len(local) < n || len(bridged) < n {
		t.Errorf("local %d, bridged %d of %d QoS 1 messages", len(local), len(bridged), n)
	}
	mu.Unlock()

	// The same local path on a node whose upstream is down (nothing listens): the
	// bridge queues beside the engine, local delivery does not wait for it.
	down := bridgedNode(t, "tcp://127.0.0.1:1", "edge-down")
	var downLocal []time.Duration
	sub2, err := client.Dial(ctx, down, client.Config{ClientID: "lat-sub2", OnMessage: func(m client.Message) {
		d := stamp(m.Payload)
		mu.Lock()
		downLocal = append(downLocal, d)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if _, _, err := sub2.Subscribe(ctx, client.Name("sensors/#"), 1); err != nil {
		t.Fatal(err)
	}
	pub2, err := client.Dial(ctx, down, client.Config{ClientID: "lat-pub2"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub2.Close()
	for range n {
		binary.BigEndian.PutUint64(buf, uint64(time.Since(start)))
		if err := pub2.Publish(ctx, client.Name("sensors/t"), buf, 1, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := len(downLocal) >= n
		mu.Unlock()
		if done {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("upstream down: local MQTT-SN delivery p50 %v p99 %v max %v (%d received)", q(downLocal, 0.5), q(downLocal, 0.99), q(downLocal, 1), len(downLocal))
	if len(downLocal) < n {
		t.Errorf("upstream down: %d of %d local deliveries", len(downLocal), n)
	}
}
