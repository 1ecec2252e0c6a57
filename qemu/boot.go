package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says what to boot and what to wait for.
type Config struct {
	Machine   Machine
	Image     string        // ELF path
	GuestPort int           // UDP port served in the guest; 0 means 1883
	ReadyLine string        // console line prefix that means ready; "" means "musqratt: ready"
	Timeout   time.Duration // to reach the ready line; 0 means 60 s
	Console   io.Writer     // optional copy of the serial console
}

// Instance is a running QEMU.
type Instance struct {
	// Addr is the host address forwarded to the guest's UDP port.
	Addr netip.AddrPort
	// ReadyAfter is the time from starting QEMU to the ready line.
	ReadyAfter time.Duration

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{} // closed when QEMU has exited
	waitErr error

	mu      sync.Mutex
	console bytes.Buffer
	lines   chan string
}

// Boot starts QEMU with cfg.Image and returns once the console shows the
// ready line. On any failure QEMU is stopped and the console so far is part
// of the error.
func Boot(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.GuestPort == 0 {
		cfg.GuestPort = 1883
	}
	if cfg.ReadyLine == "" {
		cfg.ReadyLine = "musqratt: ready"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if err := Available(cfg.Machine); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken before QEMU binds it
		port, err := freeUDPPort()
		if err != nil {
			return nil, err
		}
		in, err := start(ctx, cfg, port)
		if err == nil {
			return in, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "host forwarding") {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, cfg Config, port int) (*Instance, error) {
	args := append(cfg.Machine.Args(port, cfg.GuestPort), "-kernel", cfg.Image)
	cmd := exec.Command(cfg.Machine.QEMU, args...)
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout       // one stream: the console and QEMU's complaints
	stdin, err := cmd.StdinPipe() // the console's input (Send)
	if err != nil {
		return nil, err
	}
	in := &Instance{
		Addr:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)),
		cmd:   cmd,
		stdin: stdin,
		done:  make(chan struct{}),
		lines: make(chan string, 1024),
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Machine.QEMU, err)
	}
	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		in.readConsole(stdout, cfg.Console)
	}()
	go func() {
		readDone.Wait() // Wait closes the pipe: read it all first
		in.waitErr = cmd.Wait()
		close(in.done)
	}()

	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-in.lines:
			if !ok {
				<-in.done
				return nil, fmt.Errorf("%s exited before %q (%v); console:\n%s", cfg.Machine.QEMU, cfg.ReadyLine, in.waitErr, in.Console())
			}
			if strings.HasPrefix(line, cfg.ReadyLine) {
				in.ReadyAfter = time.Since(t0)
				go in.drainLines()
				return in, nil
			}
		case <-timer.C:
			in.Close()
			return nil, fmt.Errorf("no %q within %v; console:\n%s", cfg.ReadyLine, cfg.Timeout, in.Console())
		case <-ctx.Done():
			in.Close()
			return nil, ctx.Err()
		}
	}
}

// Send types line (and a newline) on the guest's serial console.
func (in *Instance) Send(line string) error {
	_, err := io.WriteString(in.stdin, line+"\n")
	return err
}

func (in *Instance) readConsole(r io.Reader, copyTo io.Writer) {
	defer close(in.lines)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			in.mu.Lock()
			in.console.WriteString(line)
			in.mu.Unlock()
			if copyTo != nil {
				copyTo.Write([]byte(line))
			}
			select {
			case in.lines <- strings.TrimSuffix(line, "\n"):
			default: // nobody is waiting for lines any more
			}
		}
		if err != nil {
			return
		}
	}
}

func (in *Instance) drainLines() {
	for range in.lines {
	}
}

// Console returns everything the guest and QEMU printed so far.
func (in *Instance) Console() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.console.String()
}

// Done is closed when QEMU has exited.
func (in *Instance) Done() <-chan struct{} { return in.done }

// ExitCode returns QEMU's exit status once it has exited (see
// [Machine.ExitStatus] for how a guest's code maps to it), or -1 if it was
// killed by a signal.
func (in *Instance) ExitCode() int {
	<-in.done
	return in.cmd.ProcessState.ExitCode()
}

// Close stops QEMU (SIGTERM, then SIGKILL after 5 s) and waits for it. It is
// safe to call more than once and after QEMU has exited by itself.
func (in *Instance) Close() error {
	select {
	case <-in.done:
		return nil
	default:
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(5 * time.Second):
		in.cmd.Process.Kill()
		<-in.done
	}
	var ee *exec.ExitError
	if in.waitErr != nil && !errors.As(in.waitErr, &ee) {
		return in.waitErr
	}
	return nil
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("find a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
