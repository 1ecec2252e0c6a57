package qemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/musqratt/musqratt/broker/client"
)

// Under QEMU's user network the guest reaches the host's 127.0.0.1 services at the
// host address, 10.0.0.2 (userNet).
const hostFromGuest = "10.0.0.2"

// TestMX6ULLEVKBridge: the image's upstream bridge over TCP. Debian's mosquitto
// listens on 127.0.0.1; the image is built with ExtraConfig bridge lines naming it at
// 10.0.0.2, so the bridge's paho client dials through the standard library's net,
// routed by net.SocketFunc to the gVisor stack, through QEMU's user network.
// MQTT-SN QoS 1 publishes into the image must reach an MQTT subscriber on
// mosquitto with the out rule's prefix, and MQTT publishes on mosquitto must reach an
// MQTT-SN subscriber in the image through the in rule.
func TestMX6ULLEVKBridge(t *testing.T) { testBridge(t, MX6ULLEVK, false) }

// TestMicrovmBridge: the same over virtio-net on amd64.
func TestMicrovmBridge(t *testing.T) { testBridge(t, Microvm, false) }

// TestMX6ULLEVKBridgeTLS: the same out direction over ssl:// (crypto/tls over the
// stack's TCP connection) to a TLS-only mosquitto listener with a certificate made
// here; the image has no file for a CA, so it runs with tls_insecure.
func TestMX6ULLEVKBridgeTLS(t *testing.T) { testBridge(t, MX6ULLEVK, true) }

// TestExtraConfigError: a bad ExtraConfig line stops the boot naming the line and
// the problem, with a failing exit status.
func TestExtraConfigError(t *testing.T) {
	m := MX6ULLEVK
	img := image(t, m, "-X", "main.ExtraConfig=log_level info;bridge address nowhere")
	var line string
	for _, l := range strings.Split(bootFailing(t, m, img), "\n") {
		if strings.HasPrefix(l, "musqratt: stopped:") {
			line = l
		}
	}
	if !strings.Contains(line, "main.ExtraConfig:2:") || !strings.Contains(line, "nowhere") {
		t.Fatalf("stop line %q does not name main.ExtraConfig:2 and the value", line)
	}
	t.Logf("console: %s", line)
}

func testBridge(t *testing.T, m Machine, useTLS bool) {
	mq := startMosquitto(t, useTLS)
	scheme, rules := "tcp", ";bridge in img/cmd/# 1 img/"
	if useTLS {
		scheme, rules = "ssl", ";bridge tls_insecure true"
	}
	extra := "bridge address " + scheme + "://" + net.JoinHostPort(hostFromGuest, strconv.Itoa(mq.port)) +
		";bridge client_id musqratt-img;bridge out sensors/# 1 img/" + rules
	img := image(t, m, "-X", "main.ExtraConfig="+extra)
	in, err := Boot(context.Background(), Config{Machine: m, Image: img, Timeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := in.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			// Is the guest still scheduling goroutines? tamago preempts none: one
			// that spins without blocking stops the whole image, console included.
			mark := len(in.Console())
			in.Send("stats")
			time.Sleep(3 * time.Second)
			if !strings.Contains(in.Console()[mark:], "== musqratt on ") {
				t.Logf("the guest did not answer the stats command within 3 s: it is hung (a goroutine spinning?)")
			}
			t.Logf("console:\n%s", in.Console())
		}
	}()
	t.Logf("ready %v after QEMU started; UDP %v; upstream %s://127.0.0.1:%d (%s from the guest)",
		in.ReadyAfter.Round(time.Millisecond), in.Addr, scheme, mq.port, hostFromGuest)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The MQTT subscriber on mosquitto, before anything is published.
	var got mqttInbox
	sub := mq.client(t, "host-sub")
	if tok := sub.Subscribe("img/#", 1, got.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe on mosquitto: %v", tok.Error())
	}

	dial := func(id string, mod func(*client.Config)) *client.Client {
		t.Helper()
		cfg := client.Config{ClientID: id, RetryInterval: 2 * time.Second, Retries: 5}
		if mod != nil {
			mod(&cfg)
		}
		c, err := client.Dial(ctx, in.Addr.String(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	warm := dial("img-warm", func(c *client.Config) { c.RetryInterval, c.Retries = 500*time.Millisecond, 60 })
	if err := warm.Ping(ctx); err != nil {
		t.Fatalf("warm-up ping: %v", err)
	}
	warm.Disconnect(ctx)

	// Out: MQTT-SN QoS 1 into the image, MQTT out of mosquitto with the prefix. The
	// first may be published before the bridge has connected: it queues them.
	n := 200
	if useTLS {
		n = 50
	}
	pub := dial("img-pub", nil)
	t0 := time.Now()
	for i := range n {
		if err := pub.Publish(ctx, client.Name("sensors/temp"), []byte(strconv.Itoa(i)), 1, false); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	published := time.Since(t0)
	msgs := got.waitFor(t, n, 30*time.Second)
	through := time.Since(t0)
	distinct := map[string]bool{}
	for _, mm := range msgs {
		if mm.topic != "img/sensors/temp" || mm.qos != 1 {
			t.Errorf("upstream got %q at QoS %d, want img/sensors/temp at QoS 1", mm.topic, mm.qos)
		}
		distinct[mm.payload] = true
	}
	for i := range n {
		if !distinct[strconv.Itoa(i)] {
			t.Errorf("message %d never reached mosquitto", i)
		}
	}
	connected := strings.Contains(in.Console(), "bridge connected upstream")
	t.Logf("%s: %d MQTT-SN QoS 1 publishes (PUBACKed in %v) reached the MQTT subscriber on mosquitto over %s as img/sensors/temp: %d received, %d distinct, all within %v of the first publish (bridge connected line on console: %v)",
		m.Board, n, published.Round(time.Millisecond), scheme, len(msgs), len(distinct), through.Round(time.Millisecond), connected)
	if useTLS {
		return
	}

	// In: MQTT on mosquitto, MQTT-SN out of the image with the prefix stripped.
	snIn := &inbox{}
	snSub := dial("img-cmd", func(c *client.Config) { c.OnMessage = snIn.add })
	if _, _, err := snSub.Subscribe(ctx, client.Name("cmd/#"), 1); err != nil {
		t.Fatal(err)
	}
	up := mq.client(t, "host-pub")
	t1 := time.Now()
	const k = 20
	for i := range k {
		tok := up.Publish("img/cmd/led", 1, false, fmt.Sprint("on-", i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish on mosquitto: %v", tok.Error())
		}
	}
	gotIn := snIn.waitFor(t, "bridge in", func(m []client.Message) bool { return len(m) >= k })
	seen := map[string]bool{}
	for _, mm := range gotIn {
		if mm.Topic != "cmd/led" {
			t.Errorf("image subscriber got topic %q, want cmd/led", mm.Topic)
		}
		seen[string(mm.Payload)] = true
	}
	if len(seen) != k {
		t.Errorf("image subscriber got %d distinct of %d", len(seen), k)
	}
	t.Logf("%s: %d MQTT QoS 1 publishes on mosquitto to img/cmd/led reached the MQTT-SN subscriber in the image as cmd/led within %v",
		m.Board, k, time.Since(t1).Round(time.Millisecond))
}

// mosquittoServer is Debian's mosquitto on a free 127.0.0.1 TCP port for the test's
// lifetime (as net/bridge's tests start it), plain or TLS only.
type mosquittoServer struct {
	port int
	tls  bool
	ca   string // PEM file of the self-signed server certificate, when tls
}

func startMosquitto(t *testing.T, useTLS bool) *mosquittoServer {
	t.Helper()
	if testing.Short() {
		t.Skip("NOT RUN: image test skipped in -short mode")
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, serr := os.Stat(bin); serr != nil {
			notRun(t, "the bridge test needs mosquitto (Debian: apt-get install mosquitto; make deps)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file %s\nlog_type all\n",
		port, filepath.Join(dir, "mosquitto.log"))
	m := &mosquittoServer{port: port, tls: useTLS}
	if os.Geteuid() == 0 {
		// Started as root, mosquitto becomes user mosquitto, who cannot read the
		// test's temporary directory (the certificate and key below).
		conf += "user root\n"
	}
	if useTLS {
		cert, key := selfSigned(t, dir)
		conf += fmt.Sprintf("certfile %s\nkeyfile %s\n", cert, key)
		m.ca = cert
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	cmd.SysProcAttr = sysProcAttr()
	var out strings.Builder // start-up errors come before the log file is open
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("mosquitto output:\n%s\nmosquitto log:\n%s", out.String(), log)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start listening")
		}
	}
}

// client connects a paho MQTT client to the server from the host.
func (m *mosquittoServer) client(t *testing.T, id string) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().SetClientID(id).SetCleanSession(true).SetAutoReconnect(true)
	if m.tls {
		pemBytes, err := os.ReadFile(m.ca)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemBytes)
		opts.AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", m.port)).SetTLSConfig(&tls.Config{RootCAs: pool})
	} else {
		opts.AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", m.port))
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect to mosquitto: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and 10.0.0.2 and its
// key as PEM files in dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mosquitto"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(hostFromGuest)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// mqttInbox collects what a paho subscriber receives.
type mqttInbox struct {
	mu   sync.Mutex
	msgs []mqttMsg
}

type mqttMsg struct {
	topic, payload string
	qos            byte
}

func (b *mqttInbox) handler(_ mqtt.Client, m mqtt.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, mqttMsg{m.Topic(), string(m.Payload()), m.Qos()})
	b.mu.Unlock()
}

// waitFor waits until n distinct payloads have arrived, or within has passed, and
// returns everything received.
func (b *mqttInbox) waitFor(t *testing.T, n int, within time.Duration) []mqttMsg {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		msgs := slices.Clone(b.msgs)
		b.mu.Unlock()
		distinct := map[string]bool{}
		for _, m := range msgs {
			distinct[m.payload] = true
		}
		if len(distinct) >= n || time.Now().After(deadline) {
			return msgs
		}
	}
}
