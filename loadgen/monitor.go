package loadgen

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"plateau/media"
)

// Supervisors' monitor sessions: once the calls are up, supervisor j
// registers and dials the feature code of the mode followed by operator
// j's extension (*1<ext> listen, *2 whisper, *3 barge: b2bua/features.go).
// Plateau answers and sends the supervisor's phone the mix of the call,
// which the loadgen counts per session, finding lost packets by RTP
// sequence number. Like a phone, the supervisor's side sends µ-law
// silence every 20 ms; in whisper and barge that silence is mixed into
// the monitored call, which the probes survive (see putProbe).

// featureCode is what a supervisor dials to monitor ext's call in mode.
func featureCode(mode media.MonitorMode, ext string) (string, error) {
	switch mode {
	case media.Listen:
		return "*1" + ext, nil
	case media.Whisper:
		return "*2" + ext, nil
	case media.Barge:
		return "*3" + ext, nil
	}
	return "", fmt.Errorf("monitor mode %v has no feature code", mode)
}

// placeMonitor registers supervisor j and has them join operator j's call.
func placeMonitor(ctx context.Context, cfg Config, u *ua, e *engine, mons []*leg, j int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sup := cfg.Supervisors[j]
	code, err := featureCode(cfg.MonitorMode, cfg.Users[j].Ext)
	if err != nil {
		return err
	}
	if err := u.register(ctx, sup, time.Hour); err != nil {
		return err
	}
	i := e.calls + j
	l, dest, err := u.dial(ctx, sup, code, e.localAddr(i))
	if err != nil {
		return fmt.Errorf("monitor %s: %w", code, err)
	}
	mons[j] = l
	e.activate(i, dest)
	return nil
}

// seqTracker extends 16-bit RTP sequence numbers to a count that does
// not wrap (RFC 3550 A.1 without its probation): a number less than half
// the space ahead of the highest seen moves it forward, across a wrap if
// need be; any other is an older packet (reordered or repeated).
type seqTracker struct {
	started bool
	cycles  int64 // wraps seen, times 1<<16
	max     uint16
}

func (t *seqTracker) extend(seq uint16) int64 {
	if !t.started {
		t.started, t.max = true, seq
		return int64(seq)
	}
	if seq-t.max < 1<<15 {
		if seq < t.max {
			t.cycles += 1 << 16
		}
		t.max = seq
		return t.cycles + int64(seq)
	}
	c := t.cycles
	if seq > t.max { // older, from before the last wrap
		c -= 1 << 16
	}
	return c + int64(seq)
}

// MonitorWindow counts the packets each supervisor's phone receives
// between From and To (arrival times since the run's start). Session j's
// receiver is the only writer of its counts.
type MonitorWindow struct {
	From, To time.Duration
	sessions []monitorCount
}

type monitorCount struct {
	recv           atomic.Uint64
	lo, hi         atomic.Int64 // extended sequence numbers received (recv > 0)
	lastAt, maxGap atomic.Int64 // nanoseconds
}

// NewMonitorWindow accounts for n sessions between from and to.
func NewMonitorWindow(n int, from, to time.Duration) *MonitorWindow {
	return &MonitorWindow{From: from, To: to, sessions: make([]monitorCount, n)}
}

// Received records that session j's phone got the packet with extended
// sequence number seq at now.
func (w *MonitorWindow) Received(j int, seq int64, now time.Duration) {
	if now < w.From || now >= w.To || j < 0 || j >= len(w.sessions) {
		return
	}
	c := &w.sessions[j]
	if c.recv.Load() == 0 {
		c.lo.Store(seq)
		c.hi.Store(seq)
	} else {
		if seq < c.lo.Load() {
			c.lo.Store(seq)
		}
		if seq > c.hi.Load() {
			c.hi.Store(seq)
		}
		if gap := int64(now) - c.lastAt.Load(); gap > c.maxGap.Load() {
			c.maxGap.Store(gap)
		}
	}
	c.lastAt.Store(int64(now))
	c.recv.Add(1)
}

// MonitorStats is what the supervisors' phones received in a window.
type MonitorStats struct {
	Up        int           // sessions answered and not ended by Plateau
	Receiving int           // sessions that received in the window
	Recv      uint64        // packets received
	Expected  uint64        // per session highest - lowest sequence + 1, summed
	Lost      uint64        // Expected - Recv per session, summed (never negative)
	LossPct   float64       // Lost / Expected, in %
	WorstPct  float64       // the worst session's loss, in %
	MaxGap    time.Duration // the longest wait between two packets of a session
	PerSecond float64       // packets per second per session up (50 expected)
}

// Stats sums the sessions; up is how many were in progress.
func (w *MonitorWindow) Stats(up int) MonitorStats {
	st := MonitorStats{Up: up}
	for i := range w.sessions {
		c := &w.sessions[i]
		recv := c.recv.Load()
		if recv == 0 {
			continue
		}
		st.Receiving++
		st.Recv += recv
		exp := uint64(c.hi.Load()-c.lo.Load()) + 1
		st.Expected += exp
		if recv < exp {
			st.Lost += exp - recv
			st.WorstPct = max(st.WorstPct, 100*float64(exp-recv)/float64(exp))
		}
		st.MaxGap = max(st.MaxGap, time.Duration(c.maxGap.Load()))
	}
	if st.Expected > 0 {
		st.LossPct = 100 * float64(st.Lost) / float64(st.Expected)
	}
	if d := w.To - w.From; up > 0 && d > 0 {
		st.PerSecond = float64(st.Recv) / float64(up) / d.Seconds()
	}
	return st
}
