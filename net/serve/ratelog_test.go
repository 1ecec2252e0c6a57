package serve

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/musqratt/musqratt/broker"
)

func TestEventLogRateLimits(t *testing.T) {
	var buf bytes.Buffer
	el := NewEventLog(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	el.now = func() time.Time { return now }

	// A flood of one limit: one line per window, the rest counted.
	for range 50 {
		el.Event(broker.Event{Kind: broker.EventLimit, Limit: broker.LimitClients, ClientID: "c1"})
	}
	// Another limit has its own budget.
	el.Event(broker.Event{Kind: broker.EventLimit, Limit: broker.LimitPayload, ClientID: "c2"})
	// Connects: 10 per window.
	for range 15 {
		el.Event(broker.Event{Kind: broker.EventConnect, ClientID: "c3"})
	}
	out := buf.String()
	if n := strings.Count(out, "limit=clients"); n != 1 {
		t.Errorf("%d lines for limit clients, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "limit=payload"); n != 1 {
		t.Errorf("%d lines for limit payload, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "client connect"); n != 10 {
		t.Errorf("%d connect lines, want 10:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN msg=\"limit reached\" limit=clients client=c1") {
		t.Errorf("limit line not as expected:\n%s", out)
	}

	// Next window: the first line carries the suppressed count.
	buf.Reset()
	now = now.Add(10 * time.Second)
	el.Event(broker.Event{Kind: broker.EventLimit, Limit: broker.LimitClients, ClientID: "c1"})
	if out := buf.String(); !strings.Contains(out, "suppressed=49") {
		t.Errorf("want suppressed=49:\n%s", out)
	}

	// Flush reports what is still held back.
	buf.Reset()
	el.Flush()
	if out := buf.String(); !strings.Contains(out, "kind=connect suppressed=5") || strings.Contains(out, "limit=clients") {
		t.Errorf("flush:\n%s", out)
	}
	buf.Reset()
	el.Flush()
	if buf.Len() != 0 {
		t.Errorf("second flush logged %q", buf.String())
	}
}

func TestEventLogDisabledLevel(t *testing.T) {
	var buf bytes.Buffer
	el := NewEventLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), 0)
	el.Event(broker.Event{Kind: broker.EventLimit, Limit: broker.LimitClients})
	el.Event(broker.Event{Kind: broker.EventDisconnect, ClientID: "x", State: broker.StateLost})
	if buf.Len() != 0 {
		t.Errorf("logged below the level: %q", buf.String())
	}
	el.Flush()
	if buf.Len() != 0 {
		t.Errorf("flush logged %q", buf.String())
	}
}

func TestEventLogFields(t *testing.T) {
	var buf bytes.Buffer
	el := NewEventLog(slog.New(slog.NewTextHandler(&buf, nil)), 0)
	el.Event(broker.Event{Kind: broker.EventDisconnect, ClientID: "s1", State: broker.StateLost, Detail: "keep-alive expired"})
	el.Event(broker.Event{Kind: broker.EventWill, ClientID: "s1"})
	out := buf.String()
	for _, want := range []string{`msg="client disconnect" client=s1 state=lost detail="keep-alive expired"`, `msg="client will" client=s1`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// Connects carry the client's address; refused CONNECTs and access denials are
// logged at Warn with the reason.
func TestEventLogAddressesAndRefusals(t *testing.T) {
	var buf bytes.Buffer
	el := NewEventLog(slog.New(slog.NewTextHandler(&buf, nil)), 0)
	addr := netip.MustParseAddrPort("192.0.2.7:40000")
	el.Event(broker.Event{Kind: broker.EventConnect, ClientID: "c1", Addr: addr})
	el.Event(broker.Event{Kind: broker.EventRefused, ClientID: "abcdefghijklmnopqrstuvwxyz0123", Addr: addr, Detail: "client id of 30 octets (max_client_id_length 23)"})
	el.Event(broker.Event{Kind: broker.EventDenied, ClientID: "c1", Addr: addr, Detail: "publish secret/x"})
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="client connect" client=c1 addr=192.0.2.7:40000`,
		`level=WARN msg="client refused" client=abcdefghijklmnopqrstuvwxyz0123 addr=192.0.2.7:40000 detail="client id of 30 octets (max_client_id_length 23)"`,
		`level=WARN msg="client denied" client=c1 addr=192.0.2.7:40000 detail="publish secret/x"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
