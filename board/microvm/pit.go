//go:build tamago && amd64

package microvm

// The i8254 PIT counts at 1.193182 MHz whatever the host; under TCG the TSC
// runs at the host's rate, which the CPU does not report. calibrateTSC
// counts TSC ticks across 20 ms of PIT channel 0.
const (
	pitHz       = 1193182
	pitChannel0 = 0x40
	pitCommand  = 0x43
	calibrateMs = 20
)

func inb(port uint16) uint8
func outb(port uint16, val uint8)
func outl(port uint16, val uint32)

// pitRead latches and reads channel 0's counter.
func pitRead() uint16 {
	outb(pitCommand, 0x00) // latch channel 0
	lo := inb(pitChannel0)
	hi := inb(pitChannel0)
	return uint16(hi)<<8 | uint16(lo)
}

// calibrateTSC returns the TSC frequency in Hz, or 0 if the PIT does not
// count.
func calibrateTSC() uint64 {
	// channel 0, lobyte/hibyte, mode 2 (rate generator), binary; count
	// 0 means 65536.
	outb(pitCommand, 0x34)
	outb(pitChannel0, 0)
	outb(pitChannel0, 0)

	const want = pitHz * calibrateMs / 1000
	last := pitRead()
	t0 := cpu.Counter()
	var elapsed uint32
	for spins := 0; elapsed < want; spins++ {
		now := pitRead()
		elapsed += uint32(last - now) // counts down; wraps at 65536
		last = now
		if spins > 10_000_000 && elapsed == 0 {
			return 0
		}
	}
	t1 := cpu.Counter()
	return (t1 - t0) * pitHz / uint64(elapsed)
}
