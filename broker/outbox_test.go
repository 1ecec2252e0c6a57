package broker

import (
	"testing"

	"github.com/musqratt/musqratt/broker/packet"
)

// The outbox's rules, one table each: the back-pressure rule (admit), and the
// invariants every mutation keeps (gauges equal contents, ids unique in flight).

func newTestOutbox() (*outbox, *gauges) {
	g := new(gauges)
	return &outbox{g: g}, g
}

// checkGauges fails unless the gauges count exactly what o holds.
func checkGauges(t *testing.T, o *outbox, g *gauges) {
	t.Helper()
	var sleeping int64
	for _, m := range o.queue {
		if m.sleepBuffered {
			sleeping++
		}
	}
	if g.queued.Load() != int64(len(o.queue)) || g.inflight.Load() != int64(len(o.inflight)) || g.sleepBuffered.Load() != sleeping {
		t.Fatalf("gauges queued %d inflight %d sleep %d; outbox holds %d, %d, %d",
			g.queued.Load(), g.inflight.Load(), g.sleepBuffered.Load(), len(o.queue), len(o.inflight), sleeping)
	}
	seen := map[uint16]bool{}
	for _, in := range o.inflight {
		if in.msgID == 0 || seen[in.msgID] {
			t.Fatalf("msg id %d in flight twice or zero", in.msgID)
		}
		seen[in.msgID] = true
	}
}

func TestOutboxAdmit(t *testing.T) {
	lim := func(q packet.QoS, canWait bool) admitting {
		return admitting{qos: q, canWait: canWait, queueMax: 2, sleepMax: 1}
	}
	tests := []struct {
		name   string
		aud    audience
		queued int
		a      admitting
		want   verdict
		why    Drop
	}{
		{"connected room QoS 1", audConnected, 1, lim(1, true), verdictQueue, NumDrops},
		{"connected room QoS 0", audConnected, 1, lim(0, false), verdictQueue, NumDrops},
		{"connected full QoS 1 publisher can wait", audConnected, 2, lim(1, true), verdictBlock, NumDrops},
		{"connected full QoS 2 publisher can wait", audConnected, 2, lim(2, true), verdictBlock, NumDrops},
		{"connected full QoS 0 is dropped", audConnected, 2, lim(0, true), verdictDrop, DropQueueFull},
		{"connected full, will or inject or policy drop", audConnected, 2, lim(1, false), verdictDrop, DropQueueFull},
		{"asleep room", audAsleep, 0, lim(1, true), verdictQueue, NumDrops},
		{"asleep full never blocks", audAsleep, 1, lim(1, true), verdictDrop, DropSleepBufferFull},
		{"asleep full QoS 0", audAsleep, 1, lim(0, false), verdictDrop, DropSleepBufferFull},
		{"offline persistent room", audOffline, 1, lim(1, true), verdictQueue, NumDrops},
		{"offline persistent full never blocks", audOffline, 2, lim(2, true), verdictDrop, DropOfflineQueueFull},
		{"offline persistent QoS 0 not kept, not counted", audOffline, 0, lim(0, true), verdictDrop, NumDrops},
		{"clean session away gets nothing", audGone, 0, lim(1, true), verdictDrop, NumDrops},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := newTestOutbox()
			for range tt.queued {
				o.push(&message{qos: 1})
			}
			v, why := o.admit(tt.aud, tt.a)
			if v != tt.want || why != tt.why {
				t.Errorf("admit = %d, %v; want %d, %v", v, why, tt.want, tt.why)
			}
		})
	}
}

func TestOutboxQueueGauges(t *testing.T) {
	m := func(data string, sleeping bool) *message {
		return &message{data: []byte(data), qos: 1, sleepBuffered: sleeping}
	}
	tests := []struct {
		name string
		ops  func(o *outbox)
		want string // payloads queued, in order
	}{
		{"push", func(o *outbox) { o.push(m("a", false)); o.push(m("b", true)) }, "ab"},
		{"pushFront", func(o *outbox) { o.push(m("a", false)); o.pushFront(m("z", true)) }, "za"},
		{"pop", func(o *outbox) {
			o.push(m("a", true))
			o.push(m("b", false))
			if got := o.pop(); string(got.data) != "a" || got.sleepBuffered {
				panic("pop: wrong head, or still marked sleep-buffered")
			}
		}, "b"},
		{"dropWhere", func(o *outbox) {
			for _, s := range []string{"a", "x", "b", "x"} {
				o.push(m(s, s == "x"))
			}
			n := 0
			o.dropWhere(func(m *message) bool { return string(m.data) == "x" }, func(*message) { n++ })
			if n != 2 {
				panic("dropWhere: gone not called for each")
			}
		}, "ab"},
		{"reset", func(o *outbox) {
			o.push(m("a", true))
			o.addInflight().msgID = 5
			o.addBacklog([]string{"r"}, 1)
			o.reset()
			if o.inFlight() != 0 || len(o.backlog) != 0 {
				panic("reset kept something")
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, g := newTestOutbox()
			tt.ops(o)
			var got string
			for _, m := range o.queue {
				got += string(m.data)
			}
			if got != tt.want {
				t.Errorf("queue %q, want %q", got, tt.want)
			}
			checkGauges(t, o, g)
		})
	}
}

func TestOutboxInflight(t *testing.T) {
	o, g := newTestOutbox()
	for i := range 3 {
		in := o.addInflight()
		in.msgID = o.newMsgID()
		in.buf = append(in.buf, byte(i), 1, 2, 3)
		in.msg = &message{data: []byte{byte(i)}, qos: 1}
		in.awaiting = packet.PUBACK
	}
	checkGauges(t, o, g)
	if !o.windowFull(3) || o.windowFull(4) {
		t.Errorf("windowFull wrong at %d in flight", o.inFlight())
	}
	i := o.find(o.inflight[1].msgID)
	done := o.complete(i)
	if done.buf[0] != 1 || o.inFlight() != 2 || o.find(done.msgID) >= 0 {
		t.Fatalf("complete: %+v, %d left", done, o.inFlight())
	}
	checkGauges(t, o, g)
	// The completed slot's buffer is reused by the next addInflight.
	in := o.addInflight()
	if len(in.buf) != 0 || cap(in.buf) < 4 {
		t.Errorf("reused slot buf len %d cap %d", len(in.buf), cap(in.buf))
	}
	in.msgID = o.newMsgID()
	checkGauges(t, o, g)
	// requeue: what was in flight goes to the head, DUP with its msg id.
	o.push(&message{data: []byte("q"), qos: 1})
	o.requeue()
	checkGauges(t, o, g)
	if o.inFlight() != 0 || o.queued() != 3 || !o.queue[0].dup || o.queue[0].msgID == 0 || string(o.queue[2].data) != "q" {
		t.Fatalf("requeue: %d in flight, %d queued, head %+v", o.inFlight(), o.queued(), o.queue[0])
	}
}

func TestOutboxMsgIDs(t *testing.T) {
	tests := []struct {
		name     string
		next     uint16   // nextID before
		inflight []uint16 // ids in flight
		want     uint16
	}{
		{"increments", 7, nil, 8},
		{"skips 0 on wrap", 0xFFFF, nil, 1},
		{"skips ids in flight", 7, []uint16{8, 9}, 10},
		{"skips in flight after wrap", 0xFFFF, []uint16{1, 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, g := newTestOutbox()
			for _, id := range tt.inflight {
				o.addInflight().msgID = id
			}
			o.nextID = tt.next
			if got := o.newMsgID(); got != tt.want {
				t.Errorf("newMsgID = %d, want %d", got, tt.want)
			}
			checkGauges(t, o, g)
		})
	}
	// A full window of 1024 over many wraps never hands out an id in flight.
	o, g := newTestOutbox()
	for i := range 200000 {
		if o.inFlight() == 1024 {
			o.complete(i % 1024)
		}
		o.addInflight().msgID = o.newMsgID()
		if i%9973 == 0 {
			checkGauges(t, o, g)
		}
	}
	checkGauges(t, o, g)
}

func TestOutboxBacklogAndFreed(t *testing.T) {
	o, _ := newTestOutbox()
	o.addBacklog([]string{"a", "b"}, 1)
	o.addBacklog([]string{"c"}, 0)
	var got string
	for {
		r, ok := o.nextBacklog()
		if !ok {
			break
		}
		got += r.name
		if r.name == "c" && r.granted != 0 {
			t.Errorf("c granted %d", r.granted)
		}
	}
	if got != "abc" || o.backlog != nil {
		t.Errorf("backlog gave %q, left %v", got, o.backlog)
	}

	tests := []struct {
		name    string
		blocked bool
		queued  int
		want    bool
	}{
		{"not blocked", false, 0, false},
		{"blocked, still full", true, 2, false},
		{"blocked, room", true, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := newTestOutbox()
			o.blocked = tt.blocked
			for range tt.queued {
				o.push(&message{})
			}
			if got := o.freed(2); got != tt.want {
				t.Errorf("freed = %v, want %v", got, tt.want)
			}
			if tt.want && (o.blocked || o.freed(2)) {
				t.Error("freed reported twice")
			}
		})
	}
}
