package b2bua

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"plateau/media"
	psip "plateau/sip"
)

// fakeClock drives supervise's timers: nothing fires until the test
// advances the clock past a timer's deadline.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk     *fakeClock
	at      time.Time
	c       chan time.Time
	fired   bool
	stopped bool
}

func (f *fakeTimer) C() <-chan time.Time { return f.c }
func (f *fakeTimer) Stop() bool {
	f.clk.mu.Lock()
	defer f.clk.mu.Unlock()
	was := !f.fired && !f.stopped
	f.stopped = true
	return was
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) newTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	tm := &fakeTimer{clk: f, at: f.t.Add(d), c: make(chan time.Time, 1)}
	f.timers = append(f.timers, tm)
	f.fire()
	return tm
}

func (f *fakeClock) fire() {
	for _, tm := range f.timers {
		if !tm.fired && !tm.stopped && !tm.at.After(f.t) {
			tm.fired = true
			tm.c <- f.t
		}
	}
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	f.fire()
}

func (f *fakeClock) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// closesAt is a window that closes at one instant.
type closesAt time.Time

func (w closesAt) NextClose(t time.Time) (time.Time, bool) {
	return time.Time(w), time.Time(w).After(t)
}

// fakeDialog is a dialog that ends when hung up.
type fakeDialog struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newFakeDialog() *fakeDialog {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeDialog{ctx: ctx, cancel: cancel}
}

func (f *fakeDialog) Bye(context.Context) error                             { f.cancel(); return nil }
func (f *fakeDialog) Context() context.Context                              { return f.ctx }
func (f *fakeDialog) ReadBye(*sip.Request, sip.ServerTransaction) error     { f.cancel(); return nil }
func (f *fakeDialog) ReadRequest(*sip.Request, sip.ServerTransaction) error { return nil }

// supervisedCall builds an established call (fake dialogs, a real relay)
// on a b2bua whose clock and timers are clk's, and supervises it.
func supervisedCall(t *testing.T, clk *fakeClock, windowClose time.Time, grace time.Duration) (*call, *auditLog) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a := &auditLog{reg: reg}
	s, err := psip.NewServer(psip.Options{Listen: "127.0.0.1:0", Realm: "plateau"}, fakeUsers{}, fixedBindings{}, a, reg,
		slog.New(slog.DiscardHandler), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pool, err := media.NewPortPool(41000, 41099, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	b := &B2BUA{s: s, metrics: newMetrics(reg), windows: closesAt(windowClose), active: NewActiveCalls(), calls: map[string]*call{}, lastOperator: map[string]string{},
		opts: CallOptions{MediaIP: netip.MustParseAddr("127.0.0.1"), Ports: pool, WindowWarning: 30 * time.Second, WindowGrace: grace, NewTimer: clk.newTimer}}
	c := b.newCall(testOperator, testApproved, "test")
	relay, err := media.NewRelay(pool, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c.relay = relay
	b.active.add(testOperator)
	c.slots = 1
	b.metrics.callsActive.Inc()
	op := &leg{side: media.LegOperator, d: newFakeDialog(), callID: "op", answered: true}
	out := &leg{side: media.LegOutside, d: newFakeDialog(), callID: "out", answered: true}
	c.addLeg(op)
	c.addLeg(out)
	c.setOutside(out, clk.now())
	b.goCall(c, "supervise", c.supervise)
	t.Cleanup(func() { c.end("test"); b.wg.Wait() })
	return c, a
}

func ended(c *call) string {
	select {
	case <-c.ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.endedWhy
	default:
		return ""
	}
}

// The time window closes at 12:00:00.000: a call is still up at
// 11:59:59.999 and ends at 12:00:00.000 exactly, audited window_closed.
func TestSuperviseWindowCloseToTheMillisecond(t *testing.T) {
	noon := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: noon.Add(-time.Millisecond)}
	c, a := supervisedCall(t, clk, noon, 0)
	waitFor(t, "supervise's timers", func() bool { return clk.count() == 3 }) // max duration, warning, close
	// 11:59:59.999: the warning fired (30 s before), the close did not.
	clk.advance(0)
	time.Sleep(20 * time.Millisecond) // a wrong early end would show here
	if why := ended(c); why != "" {
		t.Fatalf("call ended at 11:59:59.999: %s", why)
	}
	clk.advance(time.Millisecond) // 12:00:00.000
	waitFor(t, "the end at 12:00:00.000", func() bool { return ended(c) != "" })
	if why := ended(c); why != "window_closed" {
		t.Errorf("ended %q, want window_closed", why)
	}
	waitFor(t, "the teardown's audit entry", func() bool { return len(a.find("call.ended", "window_closed")) == 1 })
	if n, _, _ := c.b.active.Active(context.Background(), testOperator); n != 0 {
		t.Errorf("slot not released: %d", n)
	}
}

// With a grace period the call ends that long after the close, not before.
func TestSuperviseWindowGrace(t *testing.T) {
	noon := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: noon.Add(-time.Second)}
	c, _ := supervisedCall(t, clk, noon, 2*time.Minute)
	waitFor(t, "supervise's timers", func() bool { return clk.count() == 3 })
	clk.advance(time.Second + 2*time.Minute - time.Millisecond) // 12:01:59.999
	time.Sleep(20 * time.Millisecond)
	if why := ended(c); why != "" {
		t.Fatalf("ended before the grace ran out: %s", why)
	}
	clk.advance(time.Millisecond)
	waitFor(t, "the end after the grace", func() bool { return ended(c) == "window_closed" })
}

// A panic in a call's goroutine ends that call only, counted and audited.
func TestGoCallRecoversPanic(t *testing.T) {
	noon := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: noon}
	c, a := supervisedCall(t, clk, noon.Add(time.Hour), 0)
	other, _ := supervisedCall(t, clk, noon.Add(time.Hour), 0)
	var nilLeg *leg
	c.b.goCall(c, "transfer", func() { _ = nilLeg.callID })
	waitFor(t, "the panicking call's end", func() bool { return ended(c) == "panic" })
	if v := panicsIn(a.reg, "transfer"); v != 1 {
		t.Errorf("plateau_panics_total{where=transfer} = %v", v)
	}
	if len(a.find("process.panic", "PANIC")) != 1 {
		t.Errorf("panic not audited: %+v", a.entries)
	}
	if ended(other) != "" {
		t.Error("another call ended")
	}
}
