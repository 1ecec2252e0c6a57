package topic_test

import (
	"fmt"
	"slices"

	"github.com/musqratt/musqratt/broker/topic"
)

func ExampleMatch() {
	fmt.Println(topic.Match("sport/#", "sport"))
	fmt.Println(topic.Match("sport/+", "sport/"))
	fmt.Println(topic.Match("#", "$SYS/uptime"))
	// Output:
	// true
	// true
	// false
}

func ExampleValidateFilter() {
	fmt.Println(topic.ValidateFilter("sport/tennis/#"))
	fmt.Println(topic.ValidateFilter("a/#/b"))
	// Output:
	// <nil>
	// topic: filter "a/#/b": '#' must be the last level (octet 2)
}

func ExampleIndex() {
	x := topic.NewIndex()
	x.Add("sport/tennis/player1", 1, 0)
	x.Add("sport/#", 1, 2) // the same subscriber again, with a higher QoS
	x.Add("sport/+/player1", 2, 1)

	var buf []topic.Entry // reuse between calls: no allocation in steady state
	buf = x.MatchAppend(buf[:0], "sport/tennis/player1")
	slices.SortFunc(buf, func(a, b topic.Entry) int { return int(a.Sub) - int(b.Sub) })
	fmt.Println(buf)
	// Output:
	// [{1 2} {2 1}]
}

func ExampleShortName() {
	id := topic.ShortID("t1")
	fmt.Printf("%#04x %q\n", id, topic.ShortName(id))
	// Output:
	// 0x7431 "t1"
}
