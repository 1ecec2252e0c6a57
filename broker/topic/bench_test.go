package topic

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, filter, topic string }{
		{"exact", "sport/tennis/player1/ranking", "sport/tennis/player1/ranking"},
		{"plus", "sport/+/player1/+", "sport/tennis/player1/ranking"},
		{"hash", "sport/#", "sport/tennis/player1/ranking"},
		{"miss", "sport/tennis/player2/ranking", "sport/tennis/player1/ranking"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			topic := strings.Clone(bc.topic) // as from a packet: not the filter's memory
			b.ReportAllocs()
			for b.Loop() {
				if Match(bc.filter, topic) != (bc.name != "miss") {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

// BenchmarkMatchAppend measures the index with 1000 subscriptions (or 1000 subscribers of
// one topic) in the shapes a broker sees.
func BenchmarkMatchAppend(b *testing.B) {
	const n = 1000
	for _, bc := range []struct {
		name  string
		setup func(x *Index)
		topic string
		want  int
	}{
		{"exact/1k-topics", func(x *Index) {
			for i := range n {
				x.Add(fmt.Sprintf("site/dev%d/temp", i), SubscriberID(i), 1)
			}
		}, "site/dev500/temp", 1},
		{"exact/1k-subscribers", func(x *Index) {
			for i := range n {
				x.Add("site/dev1/temp", SubscriberID(i), 1)
			}
		}, "site/dev1/temp", n},
		{"wildcards/1k-topics", func(x *Index) {
			for i := range n {
				x.Add(fmt.Sprintf("site/dev%d/+", i), SubscriberID(i), 1)
				x.Add(fmt.Sprintf("site/+/temp%d", i), SubscriberID(i), 1)
			}
			x.Add("site/#", 1, 2)
			x.Add("+/dev500/#", 2, 0)
		}, "site/dev500/temp", 3},
		{"wildcards/mixed-dedup", func(x *Index) {
			for i := range n {
				sub := SubscriberID(i)
				x.Add("site/dev1/temp", sub, 0)
				x.Add("site/+/temp", sub, 1)
				x.Add("site/#", sub, 2)
			}
		}, "site/dev1/temp", n},
	} {
		b.Run(bc.name, func(b *testing.B) {
			x := NewIndex()
			bc.setup(x)
			dst := make([]Entry, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				dst = x.MatchAppend(dst[:0], bc.topic)
			}
			if len(dst) != bc.want {
				b.Fatalf("%d entries, want %d", len(dst), bc.want)
			}
		})
	}
}
