//go:build !amd64 && !arm && !arm64

package latency

import (
	"fmt"
	"runtime"
	"time"
)

// CPUCounter returns the CPU's own free-running counter where this package knows
// how to read one (amd64, arm, arm64). On this architecture it has no code for it
// and returns an error wrapping ErrNoCounter: use Monotonic, or Func with a
// counter the board provides.
func CPUCounter(window time.Duration) (Clock, error) {
	return nil, fmt.Errorf("%w: not implemented on %s", ErrNoCounter, runtime.GOARCH)
}
