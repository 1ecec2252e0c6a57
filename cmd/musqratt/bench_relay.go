package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// relay is the floor of the benchmark: a raw UDP relay on 127.0.0.1 that answers the
// session set-up just enough for the same client code to run against it, forwards each
// PUBLISH datagram unchanged to the subscriber, and acknowledges it to the publisher.
// It keeps no state but the subscribers' addresses: what is left of a broker's latency
// once the broker does nothing.
type relay struct {
	c    *net.UDPConn
	wg   sync.WaitGroup
	once sync.Once
}

func startRelay() (*relay, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(1 << 20)
	_ = c.SetWriteBuffer(1 << 20)
	r := &relay{c: c}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.serve()
	}()
	return r, nil
}

func (r *relay) addr() *net.UDPAddr { return r.c.LocalAddr().(*net.UDPAddr) }

func (r *relay) close() {
	r.once.Do(func() {
		r.c.Close()
		r.wg.Wait()
	})
}

func (r *relay) serve() {
	buf := make([]byte, 65536)
	var out []byte
	var p packet.Packet
	var subs []*net.UDPAddr // in SUBSCRIBE order
	reply := func(to *net.UDPAddr, q *packet.Packet) {
		out = packet.Append(out[:0], q)
		_, _ = r.c.WriteToUDP(out, to)
	}
	for {
		n, from, err := r.c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.Reset()
		if packet.Decode(buf[:n], &p) != nil {
			continue
		}
		switch p.Type {
		case packet.PUBLISH:
			for _, sub := range subs {
				if !sameAddr(from, sub) {
					_, _ = r.c.WriteToUDP(buf[:n], sub)
				}
			}
			switch p.Flags.QoS() {
			case packet.QoS1:
				reply(from, &packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID})
			case packet.QoS2:
				reply(from, &packet.Packet{Type: packet.PUBREC, MsgID: p.MsgID})
			}
		case packet.PUBREC: // from the subscriber, QoS 2
			reply(from, &packet.Packet{Type: packet.PUBREL, MsgID: p.MsgID})
		case packet.PUBREL: // from the publisher, QoS 2
			reply(from, &packet.Packet{Type: packet.PUBCOMP, MsgID: p.MsgID})
		case packet.CONNECT:
			reply(from, &packet.Packet{Type: packet.CONNACK})
		case packet.SUBSCRIBE:
			if !slices.ContainsFunc(subs, func(a *net.UDPAddr) bool { return sameAddr(a, from) }) {
				subs = append(subs, from)
			}
			reply(from, &packet.Packet{Type: packet.SUBACK, Flags: p.Flags & packet.Flags(0).WithQoS(packet.QoSMinus1),
				TopicID: 1, MsgID: p.MsgID})
		case packet.REGISTER:
			reply(from, &packet.Packet{Type: packet.REGACK, TopicID: 1, MsgID: p.MsgID})
		case packet.PINGREQ:
			reply(from, &packet.Packet{Type: packet.PINGRESP})
		case packet.DISCONNECT:
			subs = slices.DeleteFunc(subs, func(a *net.UDPAddr) bool { return sameAddr(a, from) })
			reply(from, &packet.Packet{Type: packet.DISCONNECT})
		}
	}
}

func sameAddr(a, b *net.UDPAddr) bool { return a.Port == b.Port && a.IP.Equal(b.IP) }

func init() {
	subcommands["relay"] = runRelay
	summaries["relay"] = "serve the bench's raw UDP relay (the floor) in a process of its own"
}

// runRelay serves the floor relay until standard input closes or the process is
// interrupted. bench --floor-process runs it as a child, so that the floor, like a
// broker, is another process: each hop then costs the same cross-process wake-up.
func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("musqratt relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: musqratt relay\n\nServes the bench's floor relay on a free 127.0.0.1 UDP port, prints \"relay ADDR\",\nand stops when standard input closes.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	r, err := startRelay()
	if err != nil {
		fmt.Fprintf(stderr, "musqratt relay: %v\n", err)
		return 1
	}
	defer r.close()
	fmt.Fprintf(stdout, "relay %s\n", r.addr())
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return 0
}

// relayProcess is the floor relay running as a child process (bench --floor-process).
type relayProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	at    *net.UDPAddr
}

func startRelayProcess() (*relayProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "relay")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &relayProcess{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "relay ")
	if err != nil || !ok {
		p.close()
		return nil, fmt.Errorf("relay process: no address (read %q: %v)", line, err)
	}
	if p.at, err = net.ResolveUDPAddr("udp", addr); err != nil {
		p.close()
		return nil, fmt.Errorf("relay process: %v", err)
	}
	return p, nil
}

func (p *relayProcess) addr() *net.UDPAddr { return p.at }

// close ends the child: its standard input closes, and if it has not gone within a
// second it is killed.
func (p *relayProcess) close() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
