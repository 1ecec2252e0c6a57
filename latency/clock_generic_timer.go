//go:build arm || arm64

package latency

import (
	"fmt"
	"time"
)

// Implemented in clock_arm.s and clock_arm64.s.
func cntvct() uint64
func cntfrq() uint32

// GenericTimer returns the ARM generic timer's virtual count (CNTVCT) as a Clock,
// at the frequency its CNTFRQ register reports. The virtual count because that is
// the one Linux lets user space read (its vDSO does); under GOOS=tamago at PL1
// either count works, and they tick together. An error (wrapping ErrNoCounter)
// means CNTFRQ reads 0: firmware or the board never programmed it.
//
// On 32-bit ARM the timer is optional (ARMv7 with the virtualisation or large
// physical address extensions, e.g. Cortex-A7, A15): on a CPU without it, or where
// the kernel denies PL0 access, the read raises an undefined-instruction exception
// (SIGILL on Linux) that this package cannot catch. Call it only where the timer
// is known to exist. On arm64 it is architectural and always readable.
func GenericTimer() (Clock, error) {
	f := cntfrq()
	if f == 0 {
		return nil, fmt.Errorf("%w: generic timer frequency (CNTFRQ) is 0", ErrNoCounter)
	}
	return counterClock{read: cntvct, freq: uint64(f)}, nil
}

// CPUCounter returns the CPU's own free-running counter: on arm and arm64 the
// generic timer (see GenericTimer, including its caveat for 32-bit ARM). window is
// unused here: CNTFRQ states the frequency, so there is nothing to calibrate.
func CPUCounter(window time.Duration) (Clock, error) {
	return GenericTimer()
}
