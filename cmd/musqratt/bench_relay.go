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
	"strings"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker"
	floor "github.com/musqratt/musqratt/broker/relay"
)

// relay is the floor of the benchmark: broker/relay's engine (session set-up answered
// just enough, each PUBLISH forwarded unchanged and acknowledged) on a raw UDP socket
// on 127.0.0.1, read and written one datagram at a time with no driver loop: what is
// left of a broker's latency once the broker does nothing.
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
	var eng floor.Relay
	var out []broker.Datagram
	for {
		n, from, err := r.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		out = eng.Receive(time.Time{}, broker.Datagram{Addr: from, B: buf[:n]}, out[:0])
		for _, d := range out {
			_, _ = r.c.WriteToUDPAddrPort(d.B, d.Addr)
		}
	}
}

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
