package broker

import "fmt"

// RetainedVisits returns how many nodes the retained index has visited matching
// SUBSCRIBE filters: a deterministic measure of what a SUBSCRIBE costs.
func RetainedVisits(b *Broker) uint64 { return b.retainedIdx.Visits() }

// CheckRetainedIndex verifies that the retained index holds exactly the retained names.
func CheckRetainedIndex(b *Broker) error {
	if b.retainedIdx.Len() != len(b.retained) {
		return fmt.Errorf("retained index holds %d names, %d retained", b.retainedIdx.Len(), len(b.retained))
	}
	for name := range b.retained {
		if !b.retainedIdx.Has(name) {
			return fmt.Errorf("retained %q not in the index", name)
		}
	}
	return nil
}
