package status

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musqratt/musqratt/latency"
)

// fakeSource is a broker under traffic: every read, counters have grown and more
// latencies have been recorded into a real histogram.
type fakeSource struct {
	mu    sync.Mutex
	reads int
	tr    *latency.Tracer
}

func newFakeSource() *fakeSource {
	return &fakeSource{tr: latency.NewTracer(latency.Monotonic())}
}

func (f *fakeSource) Title() string { return "musqratt test" }

func (f *fakeSource) AppendMetrics(dst []latency.Metric) []latency.Metric {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	n := float64(f.reads * 1000)
	for i := range 200 {
		f.tr.RecordEndToEnd(uint64(20_000 + i*300)) // 20-80 µs
	}
	return append(dst,
		latency.Metric{Name: "clients", Kind: latency.Gauge, Labels: [][2]string{{"state", "active"}}, Value: 3},
		latency.Metric{Name: "clients", Kind: latency.Gauge, Labels: [][2]string{{"state", "asleep"}}, Value: 1},
		latency.Metric{Name: "datagrams_received_total", Kind: latency.Counter, Value: 2 * n},
		latency.Metric{Name: "datagrams_sent_total", Kind: latency.Counter, Value: 2 * n},
		latency.Metric{Name: "publishes_received_total", Kind: latency.Counter, Value: n},
		latency.Metric{Name: "deliveries_total", Kind: latency.Counter, Value: n},
	)
}

func (f *fakeSource) AppendHistograms(dst []latency.NamedHistogram) []latency.NamedHistogram {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tr.AppendSnapshots(dst)
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w
}

func TestMetricsEndpoint(t *testing.T) {
	h := Handler(newFakeSource())
	w := get(t, h, "/metrics")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{
		"# TYPE musqratt_publishes_received_total counter", "musqratt_publishes_received_total 1000",
		`musqratt_clients{state="active"} 3`, `musqratt_latency_end_to_end_seconds{quantile="0.99"}`,
		"musqratt_latency_end_to_end_seconds_count 200",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	h := Handler(newFakeSource())
	w := get(t, h, "/status.json")
	var s Status
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("%v\n%s", err, w.Body.String())
	}
	if s.Title != "musqratt test" || len(s.Metrics) != 6 || s.Metrics[0].Labels["state"] != "active" || s.TimeMs == 0 {
		t.Errorf("%+v", s)
	}
	e2e := s.Histograms[0]
	if e2e.Name != "latency_end_to_end" || e2e.Count != 200 || e2e.P50 < 20 || e2e.P50 > 80 || e2e.Max < e2e.P99 {
		t.Errorf("end to end %+v", e2e)
	}
}

func TestPageAndPprofAndNotFound(t *testing.T) {
	h := Handler(newFakeSource())
	if w := get(t, h, "/"); w.Code != 200 || !strings.Contains(w.Body.String(), "status.json") {
		t.Errorf("page: %d", w.Code)
	}
	if w := get(t, h, "/debug/pprof/"); w.Code != 200 || !strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("pprof index: %d", w.Code)
	}
	if w := get(t, h, "/nope"); w.Code != 404 {
		t.Errorf("/nope: %d", w.Code)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, newFakeSource(), nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// The page in a real browser: headless Chromium loads it from a live server whose
// numbers change under it, runs its script for a few polls, and the charts it drew
// carry the real numbers.
func TestPageInHeadlessChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("NOT RUN: chromium is not installed (make deps installs Debian's chromium)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, newFakeSource(), nil)

	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=4500", "--dump-dom", "http://"+ln.Addr().String()+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	attr := func(chart, name string) string {
		re := regexp.MustCompile(`<svg[^>]*data-chart="` + chart + `"[^>]*>`)
		tag := re.FindString(string(dom))
		m := regexp.MustCompile(` data-` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			t.Errorf("chart %s has no data-%s: %q", chart, name, tag)
			return ""
		}
		return m[1]
	}
	if v := attr("clients", "active"); v != "3" {
		t.Errorf("clients chart: active %q, want 3", v)
	}
	if v := attr("clients", "asleep"); v != "1" {
		t.Errorf("clients chart: asleep %q, want 1", v)
	}
	// Counters grow by 1000 publishes per poll, polls ~1 s apart: a real rate.
	if v, _ := strconv.ParseFloat(attr("rates", "publishes-received"), 64); v < 100 {
		t.Errorf("rates chart: publishes %v/s", v)
	}
	if v, _ := strconv.Atoi(attr("rates", "points")); v < 2 {
		t.Errorf("rates chart: %d points", v)
	}
	if v, _ := strconv.Atoi(attr("latency", "count")); v < 400 {
		t.Errorf("latency chart: count %d (the histogram grows by 200 per poll)", v)
	}
	p50, _ := strconv.ParseFloat(attr("latency", "p50"), 64)
	p99, _ := strconv.ParseFloat(attr("latency", "p99"), 64)
	if p50 < 20 || p50 > 80 || p99 < p50 {
		t.Errorf("latency chart: p50 %v p99 %v µs, want 20-80 µs", p50, p99)
	}
	if !strings.Contains(string(dom), "musqratt test") {
		t.Error("title not rendered")
	}
}
