package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/musqratt/musqratt/broker/packet"
)

// benchIdle connects k clients that then stay idle, and reports the broker's resident
// memory before and after: its cost per connected client. The broker must run on this
// machine (its RSS is read from /proc); pid 0 finds it by the UDP port it serves.
func benchIdle(target *net.UDPAddr, k, pid int, timeout time.Duration, stdout, stderr io.Writer) int {
	if pid == 0 {
		var err error
		if pid, err = pidOfUDPPort(target.Port); err != nil {
			fmt.Fprintf(stderr, "musqratt bench --idle: %v; give the broker's process id with --pid\n", err)
			return 1
		}
	}
	raiseFileLimit(k + 64)
	before, err := rssOf(pid)
	if err != nil {
		fmt.Fprintf(stderr, "musqratt bench --idle: %v\n", err)
		return 1
	}
	conns := make([]*net.UDPConn, 0, k)
	defer func() {
		for _, c := range conns {
			_, _ = c.Write(packet.Append(nil, &packet.Packet{Type: packet.DISCONNECT}))
			c.Close()
		}
	}()
	start := time.Now()
	buf := make([]byte, 64)
	// Connect in batches: send a batch of CONNECTs, then collect their CONNACKs.
	const batch = 256
	tag := os.Getpid() % 100000
	for i := 0; i < k; i += batch {
		group := conns[len(conns):]
		for j := i; j < min(i+batch, k); j++ {
			c, err := net.DialUDP("udp", nil, target)
			if err != nil {
				fmt.Fprintf(stderr, "musqratt bench --idle: client %d: %v\n", j, err)
				return 1
			}
			conns = append(conns, c)
			group = append(group, c)
			id := fmt.Sprintf("idle%d-%d", tag, j)
			b := packet.Append(nil, &packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession,
				ProtocolID: packet.ProtocolID, Duration: 3600, ClientID: []byte(id)})
			if _, err := c.Write(b); err != nil {
				fmt.Fprintf(stderr, "musqratt bench --idle: client %d: %v\n", j, err)
				return 1
			}
		}
		for n, c := range group {
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			m, err := c.Read(buf)
			var p packet.Packet
			if err != nil || packet.Decode(buf[:m], &p) != nil || p.Type != packet.CONNACK || p.ReturnCode != packet.Accepted {
				fmt.Fprintf(stderr, "musqratt bench --idle: client %d not accepted (%v %v %v)\n", i+n, err, p.Type, p.ReturnCode)
				return 1
			}
		}
	}
	connectTime := time.Since(start)
	time.Sleep(time.Second) // let the broker settle (GC, page faults)
	after, err := rssOf(pid)
	if err != nil {
		fmt.Fprintf(stderr, "musqratt bench --idle: %v\n", err)
		return 1
	}
	per := float64(after-before) / float64(k)
	fmt.Fprintf(stdout, "| idle clients | connect time | RSS before | RSS after | per client |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(stdout, "| %d | %v | %.1f MiB | %.1f MiB | %.0f B |\n\n", k, connectTime.Round(time.Millisecond),
		float64(before)/(1<<20), float64(after)/(1<<20), per)
	fmt.Fprintf(stdout, "BENCH {\"target\":%q,\"idle_clients\":%d,\"rss_before\":%d,\"rss_after\":%d,\"bytes_per_client\":%.0f}\n",
		target.String(), k, before, after, per)
	return 0
}

// rssOf reads a process's resident set size (VmRSS) in bytes.
func rssOf(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the broker's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// pidOfUDPPort finds the process holding a UDP socket bound to port (Linux /proc).
func pidOfUDPPort(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no local UDP socket on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if pid != os.Getpid() {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process found holding UDP port %d", port)
}
