package bridge

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquitto is a real Mosquitto on a loopback TCP port, for the test's lifetime.
type mosquitto struct {
	t    *testing.T
	port int
	dir  string
	conf string
	cmd  *exec.Cmd
}

// startMosquitto starts Debian's mosquitto, or skips saying plainly that the test was
// not run and why.
func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("NOT RUN: mosquitto is not installed (make deps installs Debian's mosquitto)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	// Run as root, mosquitto drops to the user `mosquitto` unless told otherwise, and
	// then cannot write its database into the test's private directory: persistence
	// would be silently off, and a restart would forget every session. Stay the user
	// the test runs as.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\n"+
		"persistence true\npersistence_location %s/\nlog_dest file %s/mosquitto.log\n", me.Username, port, dir, dir)), 0o644)
	m := &mosquitto{t: t, port: port, dir: dir, conf: conf}
	m.start(bin)
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) start(bin string) {
	m.t.Helper()
	m.cmd = exec.Command(bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", m.addr()); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatal("mosquitto did not start listening")
		}
	}
}

// stop ends mosquitto with SIGTERM, so that it saves its persistent sessions.
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.cmd.Wait()
	m.cmd = nil
}

// restartable checks that the stopped mosquitto saved its sessions, which a test of
// what survives a restart depends on.
func (m *mosquitto) restartable() {
	m.t.Helper()
	if _, err := os.Stat(filepath.Join(m.dir, "mosquitto.db")); err != nil {
		log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
		m.t.Fatalf("mosquitto saved no database on SIGTERM (%v): a restart would lose every session; its log:\n%s", err, log)
	}
}

func (m *mosquitto) addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }
func (m *mosquitto) url() string  { return "tcp://" + m.addr() }

// mqttClient connects a plain MQTT client (paho) to mosquitto.
func mqttClient(t *testing.T, m *mosquitto, id string, clean bool, onConnect func(mqtt.Client)) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(m.url()).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond)
	if onConnect != nil {
		opts.SetOnConnectHandler(onConnect)
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// received collects MQTT messages.
type received struct {
	mu   sync.Mutex
	msgs []string // "topic qos payload"
	seen map[string]int
}

func (r *received) handler(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf("%s %d %s", m.Topic(), m.Qos(), m.Payload()))
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[string(m.Payload())]++
}

func (r *received) waitN(t *testing.T, n int, within time.Duration) []string {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		got := append([]string(nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

func newBridge(t *testing.T, lines ...string) *Bridge {
	t.Helper()
	var cfg Config
	for _, l := range lines {
		if err := cfg.Set(l); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runBridge runs b until the test ends; deliver records what it is handed.
func runBridge(t *testing.T, b *Bridge, deliver deliverFn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx, deliver); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !b.Stats().Connected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("bridge did not connect")
		}
	}
}

func TestForwardReachesMQTTSubscriber(t *testing.T) {
	m := startMosquitto(t)
	var got received
	sub := mqttClient(t, m, "mqtt-sub", true, nil)
	if tok := sub.Subscribe("edge-1/#", 2, got.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	b := newBridge(t, "address "+m.url(), "client_id edge-1", "out sensors/# 2 edge-1/", "out alarms/+ 0 edge-1/")
	runBridge(t, b, func(string, []byte, int8, bool) bool { return true })
	b.Forward("sensors/temp", []byte("21.5"), 1, false)
	b.Forward("alarms/door", []byte("open"), 2, false) // capped at the rule's QoS 0
	b.Forward("other/topic", []byte("not bridged"), 1, false)
	got.waitN(t, 2, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // a third (unbridged) message would arrive now
	msgs := got.waitN(t, 3, 0)
	want := []string{"edge-1/sensors/temp 1 21.5", "edge-1/alarms/door 0 open"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("MQTT subscriber got %q, want %q", msgs, want)
	}
	if s := b.Stats(); s.Forwarded != 2 || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestUpstreamReachesDeliver(t *testing.T) {
	m := startMosquitto(t)
	type del struct {
		topic, payload string
		qos            int8
		retain         bool
	}
	dels := make(chan del, 10)
	b := newBridge(t, "address "+m.url(), "in edge-1/commands/# 1 edge-1/")
	runBridge(t, b, func(topic string, payload []byte, qos int8, retain bool) bool {
		dels <- del{topic, string(payload), qos, retain}
		return true
	})
	pub := mqttClient(t, m, "mqtt-pub", true, nil)
	if tok := pub.Publish("edge-1/commands/valve", 1, true, "close"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case d := <-dels:
		// Retained upstream: whether it arrives live (Retain 0, MQTT 3.1.1 3.3.1.3) or
		// from the store because the bridge subscribed after it, it arrives.
		if d.topic != "commands/valve" || d.payload != "close" || d.qos != 1 {
			t.Errorf("delivered %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered from upstream")
	}
	if s := b.Stats(); s.Delivered != 1 {
		t.Errorf("stats %+v", s)
	}
}

// QoS 1 across an upstream restart: 200 messages forwarded while Mosquitto is stopped
// and started again mid-stream all reach a persistent MQTT subscriber.
func TestQoS1SurvivesUpstreamRestart(t *testing.T) {
	m := startMosquitto(t)
	bin := m.cmd.Path
	var got received
	resubscribe := func(c mqtt.Client) { c.Subscribe("edge-1/#", 1, got.handler) }
	mqttClient(t, m, "durable-sub", false, resubscribe)
	time.Sleep(100 * time.Millisecond)
	b := newBridge(t, "address "+m.url(), "client_id edge-1", "out data/# 1 edge-1/", "retry_min 100ms", "retry_max 200ms")
	runBridge(t, b, func(string, []byte, int8, bool) bool { return true })
	const n = 200
	for i := range n {
		b.Forward("data/x", []byte(strconv.Itoa(i)), 1, false)
		if i == 60 {
			m.stop() // upstream away: the bridge queues
			m.restartable()
		}
		if i == 140 {
			m.start(bin)
		}
		time.Sleep(2 * time.Millisecond)
	}
	got.waitN(t, n, 20*time.Second)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got.mu.Lock()
		complete := len(got.seen) == n
		got.mu.Unlock()
		if complete {
			break
		}
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	missing, dups := 0, 0
	var which []int
	for i := range n {
		c := got.seen[strconv.Itoa(i)]
		if c == 0 {
			missing++
			which = append(which, i)
		}
		if c > 1 {
			dups += c - 1
		}
	}
	s := b.Stats()
	t.Logf("QoS 1 across a Mosquitto restart: %d forwarded, %d received, %d missing, %d duplicates; bridge reconnects %d",
		n, len(got.seen), missing, dups, s.Reconnects)
	if missing != 0 {
		t.Errorf("%d of %d QoS 1 messages lost across the upstream restart: %v", missing, n, which)
	}
}

func TestQueueBoundCountsDrops(t *testing.T) {
	// Nobody listens: everything waits in the queue, and the queue holds 5.
	b := newBridge(t, "address tcp://127.0.0.1:1", "out # 1", "queue 5", "retry_min 1s")
	for i := range 8 {
		b.Forward("a/b", []byte{byte(i)}, 1, false)
	}
	if s := b.Stats(); s.Queued != 5 || s.DroppedQueue != 3 {
		t.Errorf("stats %+v; want 5 queued, 3 dropped", s)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"", "missing sub-key"},
		{"address", "want one value"},
		{"address 127.0.0.1:1883", "want scheme://host:port"},
		{"address udp://h:1", `scheme "udp"`},
		{"keepalive 0s", "want a duration"},
		{"keepalive 100000s", "want a duration"},
		{"clean_session maybe", "want true or false"},
		{"queue 0", "1 to 10000000"},
		{"out", "want FILTER"},
		{"out a/#/b", "out \"a/#/b\""},
		{"out a/# 3", "QoS is 0, 1 or 2"},
		{"out a/# 1 pre/+/", "must not contain wildcards"},
		{"in x 1 a b", "want FILTER"},
		{"colour blue", "unknown sub-key"},
		{"password", "missing value"},
	} {
		var cfg Config
		err := cfg.Set(c.line)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Set(%q) = %v, want an error containing %q", c.line, err, c.want)
		}
	}
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"out a 1"}, "no `bridge address`"},
		{[]string{"address tcp://h:1"}, "nothing would cross it"},
		{[]string{"address tcp://h:1", "in a", "tls_cert c.pem"}, "go together"},
		{[]string{"address tcp://h:1", "in a", "retry_min 10s", "retry_max 1s"}, "below retry_min"},
	} {
		var cfg Config
		for _, l := range c.lines {
			if err := cfg.Set(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.lines, err, c.want)
		}
	}
	var cfg Config
	for _, l := range []string{"address ssl://h:8883", "password two words", "in a/# 2 x/"} {
		if err := cfg.Set(l); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Password != "two words" || cfg.In[0].QoS != 2 || cfg.Validate() != nil || cfg.Queue != DefaultQueue {
		t.Errorf("%+v", cfg)
	}
	if l := strings.Join(cfg.Lines(), "|"); !strings.Contains(l, "password ********") || strings.Contains(l, "two words") {
		t.Errorf("Lines shows the password: %s", l)
	}
}

// TestIdleBridgeSleeps: connected with nothing to send, the bridge waits; it must not
// spin (hosted that burns a core; in the image, where goroutines are not preempted,
// it froze the whole guest).
func TestIdleBridgeSleeps(t *testing.T) {
	m := startMosquitto(t)
	b := newBridge(t, "address "+m.url(), "client_id idle", "out data/# 1")
	runBridge(t, b, func(string, []byte, int8, bool) bool { return true })
	time.Sleep(100 * time.Millisecond)
	before := cpuTime(t)
	time.Sleep(time.Second)
	if used := cpuTime(t) - before; used > 300*time.Millisecond {
		t.Errorf("%v of CPU in 1 s while connected and idle: the bridge spins", used)
	}
	// And it still forwards once there is something to send.
	var got received
	mqttClient(t, m, "idle-sub", true, func(c mqtt.Client) { c.Subscribe("data/#", 1, got.handler) })
	time.Sleep(200 * time.Millisecond)
	b.Forward("data/x", []byte("after idle"), 1, false)
	got.waitN(t, 1, 5*time.Second)
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
