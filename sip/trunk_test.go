package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRetryDelay(t *testing.T) {
	s := time.Second
	tests := []struct {
		interval time.Duration
		want     []time.Duration // after the 1st, 2nd … failure in a row
	}{
		{30 * s, []time.Duration{s / 2, s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}},
		{3 * s, []time.Duration{s / 2, s, 2 * s, 3 * s, 3 * s}},
		{s, []time.Duration{s / 2, s, s}},
		{200 * time.Millisecond, []time.Duration{200 * time.Millisecond, 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		for n, want := range tt.want {
			if got := retryDelay(n, tt.interval); got != want {
				t.Errorf("interval %v, failure %d: retry in %v, want %v", tt.interval, n+1, got, want)
			}
		}
	}
	if got := retryDelay(1000, 30*s); got != 30*s {
		t.Errorf("after 1000 failures: %v, want the interval", got)
	}
}

// optionsCarrier answers OPTIONS on a UDP socket with the status answer(n)
// gives the nth request (from 1); 0 drops it.
type optionsCarrier struct {
	conn   *net.UDPConn
	answer func(n int) int

	mu   sync.Mutex
	got  int
	seen chan struct{} // one send per request
}

func newFakeCarrier(t *testing.T, answer func(n int) int) *optionsCarrier {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &optionsCarrier{conn: conn, answer: answer, seen: make(chan struct{}, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(buf[:n])
			req, ok := msg.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			f.mu.Lock()
			f.got++
			k := f.got
			f.mu.Unlock()
			f.seen <- struct{}{}
			if st := f.answer(k); st != 0 {
				res := sip.NewResponseFromRequest(req, st, "Test", nil)
				conn.WriteToUDP([]byte(res.String()), from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

func (f *optionsCarrier) addr() string { return f.conn.LocalAddr().String() }

func (f *optionsCarrier) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got
}

// noCalls is a call layer without calls: the trunks are the signalling
// layer's, their keepalives run without one.
type noCalls struct{}

func (noCalls) Run(context.Context) {}
func (noCalls) Shutdown()           {}
func (noCalls) ActiveCalls() int    { return 0 }
func (noCalls) MediaIP() netip.Addr { return netip.Addr{} }

// trunkEnv is a Server with calls enabled and one trunk toward a carrier.
type trunkEnv struct {
	s     *Server
	trunk *Trunk
	audit *auditRec
	log   *syncBuf
}

func newTrunkEnv(t *testing.T, carrier string, interval time.Duration) *trunkEnv {
	t.Helper()
	buf := &syncBuf{}
	a := &auditRec{}
	s, err := NewServer(Options{
		Listen: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)), Transports: []string{"udp"}, Realm: "plateau",
		NonceTTL: time.Minute, DigestAlgorithms: []string{"MD5"}, MinExpires: time.Minute, MaxExpires: time.Hour, DefaultExpires: time.Hour,
	}, fakeUsers{}, nopBindings{}, a, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.EnableCalls(noCalls{}, []TrunkConfig{{Name: "carrier1", Address: carrier, Transport: "udp", OptionsInterval: interval}})
	if err != nil {
		t.Fatal(err)
	}
	return &trunkEnv{s: s, trunk: s.trunks[0], audit: a, log: buf}
}

// serve runs Serve until the test ends.
func (e *trunkEnv) serve(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func (e *trunkEnv) trunkStates() []string {
	e.audit.mu.Lock()
	defer e.audit.mu.Unlock()
	var out []string
	for _, k := range e.audit.kinds {
		if strings.HasPrefix(k, "trunk.state:") {
			out = append(out, k)
		}
	}
	return out
}

// waitState waits for the trunk's state, a few seconds at most: far less
// than the keepalive interval the tests use, so only the fix gets there.
func waitState(t *testing.T, e *trunkEnv, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.trunk.Status().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("trunk %+v, want %s\nlog:\n%s", e.trunk.Status(), want, e.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The UDP transport is not served yet when the keepalive starts (a loaded
// machine): the first OPTIONS must wait for it, not fail and leave the
// trunk down for a whole interval.
func TestTrunkFirstKeepaliveWaitsForTransport(t *testing.T) {
	carrier := newFakeCarrier(t, func(int) int { return 200 })
	e := newTrunkEnv(t, carrier.addr(), time.Hour)
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	e.s.serveUDP = func(c net.PacketConn) error { <-release; return e.s.srv.ServeUDP(c) }
	e.serve(t)
	t.Cleanup(open) // before Serve's cleanup, which waits for the listener

	// Held until the listener is served: nothing sent, not ready.
	time.Sleep(300 * time.Millisecond)
	if n := carrier.requests(); n != 0 {
		t.Fatalf("%d OPTIONS sent before the transport was served", n)
	}
	if st := e.trunk.Status(); st.State != TrunkStarting {
		t.Fatalf("trunk %+v before any probe, want starting", st)
	}
	if e.s.Listening() {
		t.Fatal("Listening before sipgo serves the UDP listener")
	}
	open()
	waitState(t, e, TrunkUp)
	if !e.s.Listening() || !e.trunk.Up() {
		t.Fatalf("served and answered: listening %v, trunk up %v", e.s.Listening(), e.trunk.Up())
	}
	if got := metricValue(e.s.metrics.trunkUp.WithLabelValues("carrier1")); got != 1 {
		t.Errorf("plateau_trunk_up = %v, want 1", got)
	}
	if s := e.trunkStates(); len(s) != 0 {
		t.Errorf("trunk state changes audited at a clean start: %v", s)
	}
}

// A failed probe is retried soon, with backoff, until the carrier answers;
// once up the keepalive goes back to the interval.
func TestTrunkRetriesFailedProbeQuickly(t *testing.T) {
	carrier := newFakeCarrier(t, func(n int) int {
		if n <= 3 {
			return 503
		}
		return 200
	})
	const interval = time.Hour
	e := newTrunkEnv(t, carrier.addr(), interval)
	var mu sync.Mutex
	var waits []time.Duration
	e.trunk.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		if d == interval {
			<-ctx.Done()
			return false
		}
		return ctx.Err() == nil
	}
	e.serve(t)
	waitState(t, e, TrunkUp)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(waits)
		mu.Unlock()
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, interval}
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waits between probes %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := carrier.requests(); n != 4 {
		t.Errorf("%d OPTIONS, want 4", n)
	}
	want := []string{"trunk.state:OPTIONS answered 503", "trunk.state:"}
	if got := e.trunkStates(); !slices.Equal(got, want) {
		t.Errorf("audited %q, want %q (down once, then up)", got, want)
	}
	if st := e.trunk.Status(); st.LastErr != "" || st.Since.IsZero() {
		t.Errorf("status after recovery %+v, want no error and a since", st)
	}
}

// A trunk whose keepalive is off is not probed and says so.
func TestTrunkUnmonitored(t *testing.T) {
	carrier := newFakeCarrier(t, func(int) int { return 200 })
	e := newTrunkEnv(t, carrier.addr(), 0)
	e.serve(t)
	for !e.s.Listening() {
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.s.TrunkStatus(); len(st) != 1 || st[0].State != TrunkUnmonitored || st[0].Name != "carrier1" {
		t.Fatalf("TrunkStatus %+v, want carrier1 unmonitored", st)
	}
	if !e.trunk.Up() || carrier.requests() != 0 {
		t.Fatalf("unmonitored trunk: up %v, %d OPTIONS", e.trunk.Up(), carrier.requests())
	}
}

func TestTrunkStatusString(t *testing.T) {
	since := time.Date(2026, 12, 5, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		st   TrunkStatus
		want string
	}{
		{TrunkStatus{Name: "c1", State: TrunkStarting}, "trunk c1: starting"},
		{TrunkStatus{Name: "c1", State: TrunkUp, Since: since}, "trunk c1: up since 2026-12-05T08:00:00Z"},
		{TrunkStatus{Name: "c1", State: TrunkDown, Since: since, LastErr: "OPTIONS answered 503"}, "trunk c1: down since 2026-12-05T08:00:00Z (OPTIONS answered 503)"},
		{TrunkStatus{Name: "c1", State: TrunkUnmonitored}, "trunk c1: unmonitored"},
	}
	for _, tt := range tests {
		if got := tt.st.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.st, got, tt.want)
		}
	}
}
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
