// Package loadgen places many concurrent G.711 calls through Plateau (or
// straight to pstn-sim, for a baseline) and measures the media path: every
// call is a registered operator with its own digest credentials, one ticker
// goroutine sends one 20 ms packet per call per tick, pstn-sim echoes them,
// and each packet's probe (stream, sequence, send time in the payload)
// gives per-stream loss and the round-trip time. Supervisors may monitor
// some of the calls meanwhile (monitor.go). `plateau loadgen`,
// scripts/bench-media.sh and scripts/bench-monitor.sh drive it.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"plateau/media"
)

// User is one operator's (or supervisor's) SIP credentials.
type User struct{ Ext, Password string }

// Config describes a run.
type Config struct {
	// Server is Plateau's SIP address (UDP), or pstn-sim's with Direct.
	Server string
	// Direct dials Server as the carrier itself: no REGISTER, no digest
	// (the baseline path, loadgen ↔ pstn-sim).
	Direct bool
	// Users place the calls, one call each; at least as many as the
	// largest step.
	Users []User
	// Steps are the concurrent call counts to hold, in increasing order:
	// calls are added to reach each one, then measured for Hold.
	Steps []int
	// Rate is the call setups per second while ramping.
	Rate float64
	// Hold is the measurement window of each step; Settle the wait before it
	// once the step's calls are up (the notice prompt and tone play first).
	Hold, Settle time.Duration
	// Number is dialled by every call.
	Number string
	// MediaIP is where the RTP sockets are bound; Sockets how many.
	MediaIP netip.Addr
	Sockets int
	// MaxSetupFailures ends the ramp after this many failed calls (and
	// the monitors' ramp after as many failed sessions).
	MaxSetupFailures int
	// Monitors is how many supervisors monitor calls: supervisor j
	// (Supervisors[j]) dials the MonitorMode feature code of operator j
	// (Users[j]) once the first step with at least Monitors calls is up.
	// The sessions last until the end and hang up before the calls.
	Monitors    int
	Supervisors []User
	MonitorMode media.MonitorMode
	// Watched calls, [0, Watched), have their loss and round trip reported
	// apart too: the monitored ones. 0 means Monitors; a run without
	// monitors sets it to compare the same calls.
	Watched int
	// ServerPID, when set, is sampled from /proc for CPU per step.
	ServerPID int
	// MetricsURL, when set, is Plateau's /metrics, read around each window.
	MetricsURL string
	// OnStep is called with each step's result as soon as it is measured.
	OnStep func(StepResult)
	Log    *slog.Logger
}

// StepResult is one step's measurement.
type StepResult struct {
	Calls        int           // calls up during the window
	Window       time.Duration // measurement length
	Loss         Loss
	RTT          RTTSummary
	SendTicks    uint64             // sender ticks in the window
	LateTicks    uint64             // ticks that started more than 20 ms late
	SendErrors   uint64             // failed sends in the window
	ServerCPU    float64            // server CPU seconds in the window (ServerPID)
	CPUPerCall   float64            // % of one core per call
	RemoteHangup int                // calls the far end ended so far
	CPUPct       float64            // server CPU over the window, % of one core
	Metrics      map[string]float64 // counters' increase over the window
	MetricsEnd   map[string]float64 // values at the window's end (gauges)

	Watched     int        // calls [0, Watched) are also reported apart
	WatchedLoss Loss       // their loss
	WatchedRTT  RTTSummary // their round trip
	Monitor     MonitorStats
}

// RTTSummary is the round trip of the packets received in a window.
type RTTSummary struct {
	N                        uint64
	P50, P90, P99, P999, Max time.Duration
	Mean                     time.Duration
}

func summarize(h *Histogram) RTTSummary {
	return RTTSummary{N: h.Count(), P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max(), Mean: h.Mean()}
}

// Result is a whole run.
type Result struct {
	Direct       bool
	Steps        []StepResult
	Placed       int           // calls answered
	Failed       int           // calls that failed to set up
	FirstErrors  []string      // the first few setup errors
	SetupRate    float64       // answered calls per second while ramping
	CallTime     time.Duration // sum of the answered calls' durations
	HangupErrors int

	MonitorsPlaced      int      // monitor sessions answered
	MonitorsFailed      int      // monitor sessions that failed to set up
	MonitorErrors       []string // the first few of their errors
	MonitorHangupErrors int
}

// Run places the calls step by step, measures each step and hangs up.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Steps) == 0 {
		return nil, errors.New("loadgen: no steps")
	}
	maxCalls := cfg.Steps[len(cfg.Steps)-1]
	if len(cfg.Users) < maxCalls {
		return nil, fmt.Errorf("loadgen: %d users for %d calls: one call per user", len(cfg.Users), maxCalls)
	}
	if cfg.Watched == 0 {
		cfg.Watched = cfg.Monitors
	}
	if err := cfg.checkMonitors(maxCalls); err != nil {
		return nil, err
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 50
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = min(maxCalls, 16)
	}
	if !cfg.MediaIP.IsValid() {
		cfg.MediaIP = netip.MustParseAddr("127.0.0.1")
	}
	if cfg.MaxSetupFailures <= 0 {
		cfg.MaxSetupFailures = 10
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e, err := newEngine(cfg.MediaIP, cfg.Sockets, maxCalls, cfg.Monitors, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("loadgen: rtp: %w", err)
	}
	defer e.Close()
	e.watched = cfg.Watched
	u, err := newUA(cfg.Server, cfg.MediaIP)
	if err != nil {
		return nil, fmt.Errorf("loadgen: sip: %w", err)
	}
	defer u.Close()
	e.run()

	res := &Result{Direct: cfg.Direct}
	legs := make([]*leg, maxCalls)
	mons := make([]*leg, cfg.Monitors)
	defer func() {
		// Supervisors first, as people do (after its call, Plateau would
		// end a session itself).
		res.MonitorHangupErrors, _ = hangupAll(u, e, mons, maxCalls)
		res.HangupErrors, res.CallTime = hangupAll(u, e, legs, 0)
	}()

	var (
		callErrs, monErrs firstErrors
		rampTime          time.Duration
		monitoring        bool
	)
	placed := 0
	for _, target := range cfg.Steps {
		if target <= placed {
			continue
		}
		rampStart := time.Now()
		ramp(ctx, cfg.Rate, placed, target, cfg.MaxSetupFailures, &callErrs, func(i int) error {
			return placeCall(ctx, cfg, u, e, legs, i)
		})
		rampTime += time.Since(rampStart)
		placed = target
		up := countUp(legs[:target])
		res.Placed, res.Failed = up, callErrs.count()
		log.Info("step up", "target", target, "up", up, "failed", res.Failed, "ramp", time.Since(rampStart).Round(time.Millisecond))
		if ctx.Err() != nil || res.Failed >= cfg.MaxSetupFailures {
			break
		}
		if cfg.Monitors > 0 && !monitoring && target >= cfg.Monitors {
			monitoring = true
			t0 := time.Now()
			ramp(ctx, cfg.Rate, 0, cfg.Monitors, cfg.MaxSetupFailures, &monErrs, func(j int) error {
				return placeMonitor(ctx, cfg, u, e, mons, j)
			})
			res.MonitorsPlaced, res.MonitorsFailed = countUp(mons), monErrs.count()
			log.Info("monitors up", "mode", cfg.MonitorMode, "up", res.MonitorsPlaced, "failed", res.MonitorsFailed,
				"ramp", time.Since(t0).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Settle):
		}
		if ctx.Err() != nil {
			break
		}
		st := measureStep(ctx, cfg, e, u, legs[:target], up, mons)
		res.Steps = append(res.Steps, st)
		if cfg.OnStep != nil {
			cfg.OnStep(st)
		}
	}
	res.FirstErrors, res.MonitorErrors = callErrs.first(), monErrs.first()
	if rampTime > 0 {
		res.SetupRate = float64(res.Placed) / rampTime.Seconds()
	}
	return res, ctx.Err()
}

// checkMonitors validates the monitor settings against the largest step.
func (cfg *Config) checkMonitors(maxCalls int) error {
	switch {
	case cfg.Monitors < 0 || cfg.Watched < 0:
		return errors.New("loadgen: negative monitors or watched calls")
	case cfg.Monitors > 0 && cfg.Direct:
		return errors.New("loadgen: monitors need Plateau: not with a direct run")
	case cfg.Monitors > maxCalls:
		return fmt.Errorf("loadgen: %d monitors for %d calls: one monitor per call", cfg.Monitors, maxCalls)
	case len(cfg.Supervisors) < cfg.Monitors:
		return fmt.Errorf("loadgen: %d supervisors for %d monitors: one session per supervisor", len(cfg.Supervisors), cfg.Monitors)
	case cfg.Watched > maxCalls:
		return fmt.Errorf("loadgen: %d watched calls out of %d", cfg.Watched, maxCalls)
	}
	if cfg.Monitors > 0 {
		if _, err := featureCode(cfg.MonitorMode, ""); err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
	}
	return nil
}

// ramp calls place(i) for i in [from, to), rate per second, each in its
// own goroutine, until ctx ends or errs holds maxFail failures, and waits
// for them all.
func ramp(ctx context.Context, rate float64, from, to, maxFail int, errs *firstErrors, place func(i int) error) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := from; i < to; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil || errs.count() >= maxFail {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := place(i); err != nil {
				errs.add(err)
			}
		}()
	}
}

// firstErrors counts failures and keeps the first few messages.
type firstErrors struct {
	mu   sync.Mutex
	n    int
	msgs []string
}

func (f *firstErrors) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.msgs) < 5 {
		f.msgs = append(f.msgs, err.Error())
	}
}

func (f *firstErrors) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *firstErrors) first() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msgs
}

func countUp(legs []*leg) int {
	n := 0
	for _, l := range legs {
		if l != nil {
			n++
		}
	}
	return n
}

func placeCall(ctx context.Context, cfg Config, u *ua, e *engine, legs []*leg, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	user := cfg.Users[i]
	if cfg.Direct {
		user.Password = ""
	} else if err := u.register(ctx, user, time.Hour); err != nil {
		return err
	}
	l, dest, err := u.dial(ctx, user, cfg.Number, e.localAddr(i))
	if err != nil {
		return err
	}
	legs[i] = l
	e.activate(i, dest)
	return nil
}

func measureStep(ctx context.Context, cfg Config, e *engine, u *ua, legs []*leg, up int, mons []*leg) StepResult {
	const drain = 500 * time.Millisecond
	var before, after map[string]float64
	if cfg.MetricsURL != "" {
		before, _ = scrapeMetrics(ctx, cfg.MetricsURL)
	}
	cpu0, _ := procCPU(cfg.ServerPID)
	ticks0, late0, errs0 := e.ticks.Load(), e.late.Load(), e.sendErrs.Load()
	t0 := time.Now()
	w, rtts, mw := e.measure(cfg.Hold, drain, ctx.Done())
	// CPU over the window proper: the drain is idle time for nobody.
	cpu1, _ := procCPU(cfg.ServerPID)
	elapsed := time.Since(t0)
	if cfg.MetricsURL != "" {
		after, _ = scrapeMetrics(ctx, cfg.MetricsURL)
	}
	st := StepResult{
		Calls: up, Window: cfg.Hold, Loss: w.Loss(), RTT: summarize(&rtts.All),
		SendTicks: e.ticks.Load() - ticks0, LateTicks: e.late.Load() - late0, SendErrors: e.sendErrs.Load() - errs0,
		RemoteHangup: u.remoteHangups(legs),
		Watched:      min(cfg.Watched, len(legs)),
		Monitor:      mw.Stats(countUp(mons) - u.remoteHangups(mons)),
	}
	if st.Watched > 0 {
		st.WatchedLoss, st.WatchedRTT = w.LossOf(0, st.Watched), summarize(&rtts.Watched)
	}
	if cfg.ServerPID > 0 && elapsed > 0 {
		st.ServerCPU = cpu1 - cpu0
		st.CPUPct = 100 * st.ServerCPU / elapsed.Seconds()
		if up > 0 {
			st.CPUPerCall = st.CPUPct / float64(up)
		}
	}
	if before != nil && after != nil {
		st.Metrics = map[string]float64{}
		for k, v := range after {
			st.Metrics[k] = v - before[k]
		}
		st.MetricsEnd = after
	}
	return st
}

// hangupAll ends every call of legs (streams first, first+1, …), a
// bounded number at a time, and returns the failures and the summed call
// durations.
func hangupAll(u *ua, e *engine, legs []*leg, first int) (int, time.Duration) {
	for i := range legs {
		e.deactivate(first + i)
	}
	var (
		failed atomic.Int64
		total  atomic.Int64
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 64)
	)
	for _, l := range legs {
		if l == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(l *leg) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := u.hangup(ctx, l); err != nil {
				failed.Add(1)
			}
			total.Add(int64(l.ended.Sub(l.answered)))
		}(l)
	}
	wg.Wait()
	return int(failed.Load()), time.Duration(total.Load())
}
