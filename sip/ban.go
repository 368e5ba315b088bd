package sip

import (
	"net/netip"
	"sync"
	"time"
)

// banList counts failed authentications per source address; a source that
// fails maxFailures times inside window is ignored for duration.
type banList struct {
	maxFailures int
	window      time.Duration
	duration    time.Duration
	now         func() time.Time

	mu      sync.Mutex
	sources map[netip.Addr]*banState
}

type banState struct {
	failures    int
	windowStart time.Time
	bannedUntil time.Time
}

func newBanList(maxFailures int, window, duration time.Duration, now func() time.Time) *banList {
	return &banList{maxFailures: maxFailures, window: window, duration: duration, now: now, sources: map[netip.Addr]*banState{}}
}

// banned reports whether src is currently banned.
func (b *banList) banned(src netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sources[src]
	return ok && b.now().Before(s.bannedUntil)
}

// fail records a failure and reports whether it started a ban.
func (b *banList) fail(src netip.Addr) bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sources[src]
	if !ok {
		s = &banState{windowStart: now}
		b.sources[src] = s
	}
	if now.Before(s.bannedUntil) {
		return false
	}
	if now.Sub(s.windowStart) > b.window {
		s.failures, s.windowStart = 0, now
	}
	s.failures++
	if s.failures >= b.maxFailures {
		s.bannedUntil = now.Add(b.duration)
		s.failures = 0
		return true
	}
	return false
}

// succeed forgets a source's failures after a good authentication.
func (b *banList) succeed(src netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.sources[src]; ok && !b.now().Before(s.bannedUntil) {
		delete(b.sources, src)
	}
}

// sweep drops sources whose window and ban are over; returns banned count.
func (b *banList) sweep() int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for src, s := range b.sources {
		switch {
		case now.Before(s.bannedUntil):
			n++
		case now.Sub(s.windowStart) > b.window:
			delete(b.sources, src)
		}
	}
	return n
}
