// Package loadgen places many concurrent G.711 calls through Plateau (or
// straight to pstn-sim, for a baseline) and measures the media path: every
// call is a registered operator with its own digest credentials, one ticker
// goroutine sends one 20 ms packet per call per tick, pstn-sim echoes them,
// and each packet's probe (stream, sequence, send time in the payload)
// gives per-stream loss and the round-trip time. `plateau loadgen` and
// scripts/bench-media.sh drive it.
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
)

// User is one operator's SIP credentials.
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
	// MaxSetupFailures ends the ramp after this many failed calls.
	MaxSetupFailures int
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
	SendTicks    uint64  // sender ticks in the window
	LateTicks    uint64  // ticks that started more than 20 ms late
	SendErrors   uint64  // failed sends in the window
	ServerCPU    float64 // server CPU seconds in the window (ServerPID)
	CPUPerCall   float64 // % of one core per call
	RemoteHangup int     // calls the far end ended so far
	Metrics      map[string]float64
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
	e, err := newEngine(cfg.MediaIP, cfg.Sockets, maxCalls, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("loadgen: rtp: %w", err)
	}
	defer e.Close()
	u, err := newUA(cfg.Server, cfg.MediaIP)
	if err != nil {
		return nil, fmt.Errorf("loadgen: sip: %w", err)
	}
	defer u.Close()
	e.run()

	res := &Result{Direct: cfg.Direct}
	legs := make([]*leg, maxCalls)
	defer func() { res.HangupErrors, res.CallTime = hangupAll(u, e, legs) }()

	var (
		failed   atomic.Int64
		errMu    sync.Mutex
		rampTime time.Duration
	)
	placed := 0
	for _, target := range cfg.Steps {
		if target <= placed {
			continue
		}
		rampStart := time.Now()
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		var wg sync.WaitGroup
		for i := placed; i < target; i++ {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			if ctx.Err() != nil || int(failed.Load()) >= cfg.MaxSetupFailures {
				break
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := placeCall(ctx, cfg, u, e, legs, i); err != nil {
					failed.Add(1)
					errMu.Lock()
					if len(res.FirstErrors) < 5 {
						res.FirstErrors = append(res.FirstErrors, err.Error())
					}
					errMu.Unlock()
				}
			}(i)
		}
		tick.Stop()
		wg.Wait()
		rampTime += time.Since(rampStart)
		placed = target
		up := 0
		for _, l := range legs[:target] {
			if l != nil {
				up++
			}
		}
		res.Placed, res.Failed = up, int(failed.Load())
		log.Info("step up", "target", target, "up", up, "failed", res.Failed, "ramp", time.Since(rampStart).Round(time.Millisecond))
		if ctx.Err() != nil || res.Failed >= cfg.MaxSetupFailures {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Settle):
		}
		if ctx.Err() != nil {
			break
		}
		st := measureStep(ctx, cfg, e, u, legs[:target], up)
		res.Steps = append(res.Steps, st)
		if cfg.OnStep != nil {
			cfg.OnStep(st)
		}
	}
	if rampTime > 0 {
		res.SetupRate = float64(res.Placed) / rampTime.Seconds()
	}
	return res, ctx.Err()
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

func measureStep(ctx context.Context, cfg Config, e *engine, u *ua, legs []*leg, up int) StepResult {
	const drain = 500 * time.Millisecond
	var before, after map[string]float64
	if cfg.MetricsURL != "" {
		before, _ = scrapeMetrics(ctx, cfg.MetricsURL)
	}
	cpu0, _ := procCPU(cfg.ServerPID)
	ticks0, late0, errs0 := e.ticks.Load(), e.late.Load(), e.sendErrs.Load()
	t0 := time.Now()
	w, h := e.measure(cfg.Hold, drain, ctx.Done())
	// CPU over the window proper: the drain is idle time for nobody.
	cpu1, _ := procCPU(cfg.ServerPID)
	elapsed := time.Since(t0)
	if cfg.MetricsURL != "" {
		after, _ = scrapeMetrics(ctx, cfg.MetricsURL)
	}
	st := StepResult{
		Calls: up, Window: cfg.Hold, Loss: w.Loss(), RTT: summarize(h),
		SendTicks: e.ticks.Load() - ticks0, LateTicks: e.late.Load() - late0, SendErrors: e.sendErrs.Load() - errs0,
		RemoteHangup: u.remoteHangups(legs),
	}
	if cfg.ServerPID > 0 && elapsed > 0 {
		st.ServerCPU = cpu1 - cpu0
		if up > 0 {
			st.CPUPerCall = 100 * st.ServerCPU / elapsed.Seconds() / float64(up)
		}
	}
	if before != nil && after != nil {
		st.Metrics = map[string]float64{}
		for k, v := range after {
			st.Metrics[k] = v - before[k]
		}
	}
	return st
}

// hangupAll ends every call, a bounded number at a time, and returns the
// failures and the summed call durations.
func hangupAll(u *ua, e *engine, legs []*leg) (int, time.Duration) {
	for i := range legs {
		e.deactivate(i)
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
