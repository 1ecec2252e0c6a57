package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/musqratt/musqratt/broker"
	"github.com/musqratt/musqratt/broker/brokertest"
)

// TestSubscribeRetainedVisits (issue 12, attack 6): a wildcard SUBSCRIBE whose filter
// matches 1 of 10,000 retained topics visits as many index nodes as with 10 retained —
// the filter's depth, not a scan — and still gets its one retained message.
func TestSubscribeRetainedVisits(t *testing.T) {
	for _, filter := range []string{"other/+/temperature", "other/#", "other/1/+"} {
		var visits []uint64
		for _, total := range []int{10, 10000} {
			n := newNet(t, broker.Config{MaxRetained: total + 1})
			for i := range total {
				if _, err := n.Broker.Inject(n.Now(), fmt.Sprintf("site/%d/sensor/temperature", i), []byte("x"), 0, true, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := n.Broker.Inject(n.Now(), "other/1/temperature", []byte("one"), 0, true, nil); err != nil {
				t.Fatal(err)
			}
			sub := n.NewClient("sub", addr2)
			sub.Auto = true
			sub.Connect(t, brokertest.ConnectOptions{})
			before := broker.RetainedVisits(n.Broker)
			sub.Subscribe(t, filter, 1)
			visits = append(visits, broker.RetainedVisits(n.Broker)-before)
			n.Run()
			if len(sub.Deliveries) != 1 || sub.Deliveries[0].Topic != "other/1/temperature" || sub.Deliveries[0].Data != "one" || !sub.Deliveries[0].Retain {
				t.Fatalf("%s over %d retained: deliveries %+v, want the one retained message", filter, total, sub.Deliveries)
			}
			if err := broker.CheckRetainedIndex(n.Broker); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d nodes visited over 10 retained, %d over 10,000", filter, visits[0], visits[1])
		if visits[0] != visits[1] || visits[1] > 5 {
			t.Errorf("%s: %d nodes visited over 10 retained, %d over 10,000: want the same, at most 5", filter, visits[0], visits[1])
		}
	}
}

// TestRetainedIndexOrder: a wildcard subscriber gets the retained messages it matches in
// name order (as before the index: deterministic for a given input), and the index
// follows stores, replacements and clears.
func TestRetainedIndexOrder(t *testing.T) {
	n := newNet(t, broker.Config{})
	names := []string{"b/2", "a/1", "a", "b/1/x", "a/0", "$SYS/a", "c", "b/10"}
	for _, name := range names {
		if _, err := n.Broker.Inject(n.Now(), name, []byte(name), 0, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	n.Broker.Inject(n.Now(), "c", nil, 0, true, nil)              // cleared
	n.Broker.Inject(n.Now(), "a/1", []byte("a/1'"), 0, true, nil) // replaced
	if err := broker.CheckRetainedIndex(n.Broker); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"#", []string{"a", "a/0", "a/1'", "b/1/x", "b/10", "b/2"}},
		{"+/+", []string{"a/0", "a/1'", "b/10", "b/2"}},
		{"$SYS/#", []string{"$SYS/a"}},
		{"b/+/x", []string{"b/1/x"}},
	} {
		sub := n.NewClient("sub "+tc.filter, fmt.Sprintf("10.9.0.%d:1883", len(n.Clients())+1))
		sub.Auto = true
		sub.Connect(t, brokertest.ConnectOptions{})
		sub.Subscribe(t, tc.filter, 0)
		n.Run()
		var got []string
		for _, d := range sub.Deliveries {
			got = append(got, d.Data)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: retained delivered %q, want %q", tc.filter, got, tc.want)
		}
	}
}

// TestRetainedIndexRestore: retained messages read back from a snapshot are in the index,
// so a wildcard subscriber after a restart gets them.
func TestRetainedIndexRestore(t *testing.T) {
	cfg := broker.Config{Persist: true}
	old := newNet(t, cfg)
	for _, name := range []string{"k/1", "k/2", "j/1"} {
		if _, err := old.Broker.Inject(old.Now(), name, []byte(name), 1, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	n := newNet(t, cfg)
	if rep := n.Broker.Restore(n.Now(), old.Broker.Snapshot(nil)); rep.Retained != 3 || rep.Dropped() != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	if err := broker.CheckRetainedIndex(n.Broker); err != nil {
		t.Fatal(err)
	}
	sub := n.NewClient("sub", addr2)
	sub.Auto = true
	sub.Connect(t, brokertest.ConnectOptions{})
	sub.Subscribe(t, "k/+", 1)
	n.Run()
	var got []string
	for _, d := range sub.Deliveries {
		got = append(got, d.Data)
	}
	if !slices.Equal(got, []string{"k/1", "k/2"}) {
		t.Errorf("after restore, k/+ got %q, want k/1 and k/2", got)
	}
}
