package loadgen

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func payload(stream, seq uint32, sent time.Duration) []byte {
	p := make([]byte, payloadSize)
	putProbe(p, stream, seq, sent)
	return p
}

func TestProbeRoundTrip(t *testing.T) {
	p := payload(1999, 42, 1234567*time.Microsecond)
	stream, seq, sent, ok := readProbe(p)
	if !ok || stream != 1999 || seq != 42 || sent != 1234567*time.Microsecond {
		t.Fatalf("readProbe = %d %d %v %v", stream, seq, sent, ok)
	}
	for name, p := range map[string][]byte{
		"silence": make([]byte, payloadSize),
		"short":   p[:probeLen-1],
		"empty":   nil,
	} {
		if _, _, _, ok := readProbe(p); ok {
			t.Errorf("%s: readProbe ok, want foreign", name)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram: want zeros")
	}
	// 1..1000 µs: p50 = 500 µs, p99 = 990 µs.
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}, {0, time.Microsecond}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Max() != time.Millisecond || h.Count() != 1000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	if m := h.Mean(); m < 500*time.Microsecond || m > 501*time.Microsecond {
		t.Errorf("mean %v, want 500.5µs", m)
	}

	// Coarse buckets beyond 10 ms are 100 µs wide; beyond 1 s, the last.
	var c Histogram
	c.Add(12345 * time.Microsecond)
	c.Add(5 * time.Second)
	c.Add(-time.Microsecond) // clock oddity: lands in bucket 0
	if got := c.Quantile(0.5); got != 12300*time.Microsecond {
		t.Errorf("coarse p50 = %v, want 12.3ms", got)
	}
	if got := c.Quantile(1); got != lowerBound(histFine+histCoarse-1) || c.Max() != 5*time.Second {
		t.Errorf("overflow p100 = %v max %v", got, c.Max())
	}

	var m Histogram
	m.Merge(&h)
	m.Merge(&c)
	if m.Count() != 1003 || m.Max() != 5*time.Second {
		t.Errorf("merged count %d max %v", m.Count(), m.Max())
	}
}

func TestWindowAccounting(t *testing.T) {
	ms := time.Millisecond
	w := NewWindow(3, 100*ms, 200*ms)
	w.Watched = 1
	var r RTTs
	h := &r.All
	// Stream 0: 5 sent in the window, all back, 2 ms round trip.
	// Stream 1: 4 sent, 3 back (25 % loss), one duplicate.
	// Stream 2: 2 sent, nothing back.
	// Sends before and after the window do not count, nor do their echoes.
	for i := range 5 {
		at := 100*ms + time.Duration(i)*20*ms
		w.Sent(0, at)
		w.Received(payload(0, uint32(i), at), at+2*ms, &r)
	}
	w.Sent(0, 99*ms)
	w.Received(payload(0, 99, 99*ms), 101*ms, &r)
	w.Sent(0, 200*ms)
	w.Received(payload(0, 100, 200*ms), 202*ms, &r)
	for i := range 4 {
		w.Sent(1, 100*ms+time.Duration(i)*20*ms)
	}
	w.Received(payload(1, 0, 100*ms), 104*ms, &r)
	w.Received(payload(1, 1, 120*ms), 124*ms, &r)
	w.Received(payload(1, 1, 120*ms), 125*ms, &r) // duplicate
	w.Received(payload(1, 3, 160*ms), 164*ms, &r) // 2 lost
	w.Sent(2, 150*ms)
	w.Sent(2, 170*ms)
	w.Sent(7, 150*ms) // out of range: ignored
	w.Received(make([]byte, payloadSize), 150*ms, &r)
	w.Received(payload(9, 0, 150*ms), 151*ms, &r)

	l := w.Loss()
	want := Loss{Streams: 3, Sent: 11, Recv: 8, Dup: 1, Foreign: 1, Lost: 3, Lossy: 2, Silent: 1}
	got := l
	got.LossPct, got.WorstPct = 0, 0
	if got != want {
		t.Errorf("Loss() = %+v\nwant     %+v", got, want)
	}
	if math.Abs(l.LossPct-100*3.0/11) > 1e-9 || l.WorstPct != 100 {
		t.Errorf("loss %.4f %% worst %.1f %%, want 27.27 and 100", l.LossPct, l.WorstPct)
	}
	if w.unknown.Load() != 1 {
		t.Errorf("unknown = %d, want 1", w.unknown.Load())
	}
	if h.Count() != 8 || h.Quantile(0.5) != 2*ms || h.Max() != 4*ms {
		t.Errorf("rtt: count %d p50 %v max %v, want 8, 2ms, 4ms", h.Count(), h.Quantile(0.5), h.Max())
	}
	// Stream 0 is watched: its 5 echoes, 2 ms each, and its loss alone.
	if wh := &r.Watched; wh.Count() != 5 || wh.Max() != 2*ms {
		t.Errorf("watched rtt: count %d max %v, want 5, 2ms", wh.Count(), wh.Max())
	}
	if wl := w.LossOf(0, 1); wl.Streams != 1 || wl.Sent != 5 || wl.Recv != 5 || wl.Lost != 0 {
		t.Errorf("LossOf(0, 1) = %+v, want stream 0 alone, nothing lost", wl)
	}
	if wl := w.LossOf(1, 9); wl.Streams != 2 || wl.Lost != 3 || wl.Silent != 1 {
		t.Errorf("LossOf(1, 9) = %+v, want streams 1 and 2, 3 lost", wl)
	}
}

func TestWindowNoLossWhenMoreComeBack(t *testing.T) {
	w := NewWindow(1, 0, time.Second)
	var r RTTs
	w.Sent(0, time.Millisecond)
	// Two distinct sequences back for one send (e.g. a send counted just
	// outside a window edge): never negative loss.
	w.Received(payload(0, 0, time.Millisecond), 2*time.Millisecond, &r)
	w.Received(payload(0, 5, time.Millisecond), 2*time.Millisecond, &r)
	if l := w.Loss(); l.Lost != 0 || l.LossPct != 0 || l.Lossy != 0 {
		t.Errorf("Loss() = %+v, want none lost", l)
	}

	// A stream with an extra echo does not hide another stream's loss.
	w = NewWindow(2, 0, time.Second)
	w.Sent(0, time.Millisecond)
	w.Received(payload(0, 0, time.Millisecond), 2*time.Millisecond, &r)
	w.Received(payload(0, 5, time.Millisecond), 2*time.Millisecond, &r)
	w.Sent(1, time.Millisecond)
	if l := w.Loss(); l.Lost != 1 || l.Lossy != 1 || l.Silent != 1 {
		t.Errorf("Loss() = %+v, want stream 1's packet lost", l)
	}
}

func TestParseStatCPU(t *testing.T) {
	// comm with spaces and parentheses; utime 250, stime 150 ticks.
	stat := "1234 (plat (x) eau) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 100 1000 200"
	got, err := parseStatCPU(stat)
	if err != nil || got != 4 {
		t.Fatalf("parseStatCPU = %v, %v; want 4 s", got, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP plateau_recorder_dropped_packets_total x
# TYPE plateau_recorder_dropped_packets_total counter
plateau_recorder_dropped_packets_total 3
plateau_rtp_packets_total{dir="in"} 10
plateau_rtp_packets_total{dir="out"} 7.5
bad line
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m["plateau_recorder_dropped_packets_total"] != 3 || m["plateau_rtp_packets_total"] != 17.5 {
		t.Errorf("parseMetrics = %v", m)
	}
}

// echoPeer answers every packet back to its source, dropping every
// dropEvery-th one (0: none), like pstn-sim with a lossy path.
func echoPeer(t *testing.T, dropEvery int) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for n := 1; ; n++ {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || (dropEvery > 0 && n%dropEvery == 0) {
				continue
			}
			c.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestEngineEcho(t *testing.T) {
	for _, c := range []struct {
		name      string
		dropEvery int
		minLoss   float64
		maxLoss   float64
	}{
		{"clean", 0, 0, 0},
		{"every 5th dropped", 5, 15, 25},
	} {
		t.Run(c.name, func(t *testing.T) {
			peer := echoPeer(t, c.dropEvery)
			e, err := newEngine(netip.MustParseAddr("127.0.0.1"), 2, 4, 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			for i := range 3 { // stream 3 stays idle
				e.activate(i, peer)
			}
			e.run()
			time.Sleep(3 * ptime) // let a few ticks go before measuring
			w, rtts, _ := e.measure(300*time.Millisecond, 100*time.Millisecond, nil)
			h := &rtts.All
			l := w.Loss()
			if l.Streams != 3 || l.Sent < 3*10 || l.Sent > 3*16 {
				t.Errorf("streams %d sent %d: want 3 streams, about 15 packets each", l.Streams, l.Sent)
			}
			if l.LossPct < c.minLoss || l.LossPct > c.maxLoss {
				t.Errorf("loss %.2f %%, want %v..%v (%+v)", l.LossPct, c.minLoss, c.maxLoss, l)
			}
			if h.Count() != l.Recv || h.Quantile(0.5) <= 0 || h.Max() > 100*time.Millisecond {
				t.Errorf("rtt count %d (recv %d) p50 %v max %v", h.Count(), l.Recv, h.Quantile(0.5), h.Max())
			}
			// After the window nothing more is counted.
			e.deactivate(0)
			if w2 := e.window.Load(); w2 == w {
				t.Error("the window is still open after measure")
			}
		})
	}
}
