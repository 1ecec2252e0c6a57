//go:build tamago && arm

// Package bcm2835 adapts what TamaGo drives on the Broadcom BCM2835/6
// (Raspberry Pi Zero, 1, 2) to package board. TamaGo has no network driver
// for these boards (see board/pizero/README.md), so only the clock is here.
package bcm2835

import (
	"time"

	"github.com/musqratt/musqratt/board"
)

// epoch anchors Clock; the runtime's monotonic clock on these SoCs is the
// BCM2835 free-running system timer (1 MHz) scaled to nanoseconds.
var epoch = time.Now()

// Clock is the BCM2835 system timer through the runtime: it counts
// nanoseconds with microsecond resolution. The Pi Zero's ARM1176 has no Arm
// generic timer to read directly.
type Clock struct{}

// Counter implements [board.Counter].
func (Clock) Counter() uint64 { return uint64(time.Since(epoch)) }

// Freq implements [board.Counter].
func (Clock) Freq() uint64 { return 1e9 }

var _ board.Counter = Clock{}
