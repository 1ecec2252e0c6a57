//go:build race

package netstack

// raceEnabled: the race detector makes sync.Pool drop a quarter of what is put
// back, so gVisor's pooled packet buffers and views allocate more often.
const raceEnabled = true
