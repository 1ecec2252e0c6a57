//go:build !linux

package serial

import (
	"fmt"
	"runtime"
)

// Open opens a tty device; it is implemented on Linux only (termios through
// golang.org/x/sys/unix). Elsewhere it says so: serve a stream opened some other way
// with [New].
func Open(device string, baud int, opts Options) (*Bind, error) {
	return nil, fmt.Errorf("serial: open %s: opening a tty is not supported on %s (Linux only; use serial.New on an open stream)", device, runtime.GOOS)
}
