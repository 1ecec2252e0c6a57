package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/musqratt/musqratt/broker/packet"
	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair: the master, which the test reads and writes
// as a sensor on the far end of the line would, and the slave's path, which the
// daemon opens as its serial_listen device.
func openPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("NOT RUN: no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	// The master side raw too, so nothing the line discipline does stands between the
	// test and the daemon's frames.
	if tio, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS); err == nil {
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		unix.IoctlSetTermios(int(m.Fd()), unix.TCSETS, tio)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// readFrame reads MQTT-SN frames from the line until one of type want arrives.
func readFrame(t *testing.T, m *os.File, want packet.Type) packet.Packet {
	t.Helper()
	var buf []byte
	b := make([]byte, 512)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := m.Read(b)
		buf = append(buf, b[:n]...)
		for len(buf) >= 2 && int(buf[0]) >= 2 && len(buf) >= int(buf[0]) {
			var p packet.Packet
			l := int(buf[0])
			err := packet.Decode(buf[:l], &p)
			buf = buf[l:]
			if err == nil && p.Type == want {
				return p
			}
		}
	}
	t.Fatalf("no %v on the serial line within 5 s", want)
	return packet.Packet{}
}

// The daemon serves MQTT-SN on a serial line (serial_listen) beside UDP, on one
// engine: a client on the line and `musqratt pub`/`sub` over UDP exchange messages
// both ways, at QoS 1.
func TestServeSerialLine(t *testing.T) {
	m, dev := openPty(t)
	port := daemon(t, "serial_listen "+dev+" 115200\n")
	send := func(p *packet.Packet) {
		if _, err := m.Write(packet.Append(nil, p)); err != nil {
			t.Fatal(err)
		}
	}
	send(&packet.Packet{Type: packet.CONNECT, Flags: packet.FlagCleanSession, ProtocolID: packet.ProtocolID, Duration: 60, ClientID: []byte("serial-1")})
	if p := readFrame(t, m, packet.CONNACK); p.ReturnCode != packet.Accepted {
		t.Fatalf("CONNACK %v", p.ReturnCode)
	}
	topicID := uint16('s')<<8 | uint16('e')
	send(&packet.Packet{Type: packet.SUBSCRIBE, Flags: packet.Flags(0).WithQoS(packet.QoS1).WithTopicIDType(packet.TopicShort), MsgID: 1, TopicID: topicID})
	readFrame(t, m, packet.SUBACK)

	// UDP → serial.
	if code, _, errOut := runClient(t, port, "", "pub", "-t", "se", "-m", "over the air", "-q", "1"); code != 0 {
		t.Fatalf("pub: exit %d: %s", code, errOut)
	}
	p := readFrame(t, m, packet.PUBLISH)
	if string(p.Data) != "over the air" || p.Flags.QoS() != packet.QoS1 {
		t.Fatalf("serial client got %q at %v", p.Data, p.Flags.QoS())
	}
	send(&packet.Packet{Type: packet.PUBACK, TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted})

	// Serial → UDP.
	done := make(chan string, 1)
	go func() {
		_, out, _ := runClient(t, port, "", "sub", "-t", "se", "-C", "1", "-W", "10", "-q", "1")
		done <- out
	}()
	time.Sleep(500 * time.Millisecond) // the subscriber connects and subscribes
	send(&packet.Packet{Type: packet.PUBLISH, Flags: packet.Flags(0).WithQoS(packet.QoS1).WithTopicIDType(packet.TopicShort), TopicID: topicID, MsgID: 7, Data: []byte("from the line")})
	if a := readFrame(t, m, packet.PUBACK); a.MsgID != 7 || a.ReturnCode != packet.Accepted {
		t.Fatalf("PUBACK %+v", a)
	}
	select {
	case out := <-done:
		if !strings.Contains(out, "from the line") {
			t.Fatalf("UDP subscriber printed %q", out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("UDP subscriber got nothing")
	}
}
