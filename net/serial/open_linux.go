package serial

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// rates are the line rates Linux's termios names (Cflag CBAUD values).
var rates = map[int]uint32{
	50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134, 150: unix.B150,
	200: unix.B200, 300: unix.B300, 600: unix.B600, 1200: unix.B1200, 1800: unix.B1800,
	2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200,
	38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 500000: unix.B500000, 576000: unix.B576000,
	921600: unix.B921600, 1000000: unix.B1000000, 1152000: unix.B1152000,
	1500000: unix.B1500000, 2000000: unix.B2000000, 2500000: unix.B2500000,
	3000000: unix.B3000000, 3500000: unix.B3500000, 4000000: unix.B4000000,
}

// Open opens the tty device (for example /dev/ttyUSB0 or a pty's /dev/pts/N) in
// raw mode, 8N1, without flow control (neither RTS/CTS nor XON/XOFF), ignoring modem
// control lines, at baud (one of the standard Linux rates, 50 to 4000000), discards
// whatever was waiting in its input, and serves MQTT-SN on it as [New] does. opts.Baud
// is set to baud. It is the constructor behind the daemon's "serial_listen DEVICE
// BAUD"; the Bind's Close closes the device.
func Open(device string, baud int, opts Options) (*Bind, error) {
	speed, ok := rates[baud]
	if !ok {
		return nil, fmt.Errorf("serial: open %s: baud rate %d is not a standard Linux rate (e.g. 9600, 115200, 921600)", device, baud)
	}
	fd, err := unix.Open(device, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("serial: open %s: %w", device, err)
	}
	if err := configure(fd, speed); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial: open %s: %w", device, err)
	}
	// Non-blocking, so the runtime's poller serves it: Close interrupts a pending
	// Read or Write.
	f := os.NewFile(uintptr(fd), device)
	opts.Baud = baud
	b, err := New(f, device, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// configure sets raw mode (as cfmakeraw), 8N1, no flow control, CLOCAL and CREAD,
// reads returning as soon as one octet is there, and the speed.
func configure(fd int, speed uint32) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("not a terminal (TCGETS): %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR |
		unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set raw 8N1 (TCSETS): %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH); err != nil {
		return fmt.Errorf("flush input (TCFLSH): %w", err)
	}
	return nil
}
