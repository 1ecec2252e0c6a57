package kernel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/musqratt/musqratt/broker"
)

// ConsoleHelp lists the serial console's commands.
const ConsoleHelp = "commands: stats (metrics dump), clients (sessions by state), reset (zero counters and histograms), help"

// Console runs the operator's console over a serial line (the image) or any reader and
// writer: the metrics dump every `every` (0: only on demand) and the commands of
// ConsoleHelp, one per line from in. It returns when ctx ends or in is exhausted and
// the periodic dump is off. Writes to out are serialised.
func Console(ctx context.Context, m *Metrics, in io.Reader, out io.Writer, every time.Duration) {
	var mu sync.Mutex
	say := func(f func(w io.Writer)) {
		mu.Lock()
		defer mu.Unlock()
		f(out)
	}
	var wg sync.WaitGroup
	if every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					say(func(w io.Writer) { _ = m.WriteText(w) })
				}
			}
		}()
	}
	if in != nil {
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(in)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
		}()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case line, ok := <-lines:
				if !ok {
					break loop
				}
				say(func(w io.Writer) { consoleCommand(w, m, line) })
			}
		}
	}
	wg.Wait()
}

// consoleCommand runs one console line.
func consoleCommand(w io.Writer, m *Metrics, line string) {
	switch cmd := strings.ToLower(strings.TrimSpace(line)); cmd {
	case "":
	case "stats":
		_ = m.WriteText(w)
	case "clients":
		s := m.Stats()
		var b strings.Builder
		b.WriteString("clients:")
		var total int64
		for st := range broker.NumStates {
			fmt.Fprintf(&b, " %s %d", broker.State(st), s.ClientsByState[st])
			total += s.ClientsByState[st]
		}
		fmt.Fprintf(&b, " (total %d); subscriptions %d, topics %d, retained %d, inflight %d, sleep buffered %d\n",
			total, s.Subscriptions, s.Topics, s.Retained, s.Inflight, s.SleepBuffered)
		_, _ = io.WriteString(w, b.String())
	case "reset":
		m.Reset()
		_, _ = io.WriteString(w, "counters and latency histograms reset\n")
	case "help", "?":
		_, _ = io.WriteString(w, ConsoleHelp+"\n")
	default:
		fmt.Fprintf(w, "unknown command %q; %s\n", cmd, ConsoleHelp)
	}
}
