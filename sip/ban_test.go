package sip

import (
	"net/netip"
	"testing"
	"time"
)

func TestBanList(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.7")
	other := netip.MustParseAddr("192.0.2.8")
	const max = 5
	window, duration := time.Minute, 15*time.Minute

	t.Run("N-1 failures do not ban, the Nth does", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 1; i < max; i++ {
			if b.fail(src) {
				t.Fatalf("failure %d banned", i)
			}
			clk.advance(time.Second)
		}
		if b.banned(src) {
			t.Fatal("banned after N-1 failures")
		}
		if !b.fail(src) {
			t.Fatal("Nth failure did not ban")
		}
		if !b.banned(src) || b.banned(other) {
			t.Fatalf("banned(src)=%v banned(other)=%v", b.banned(src), b.banned(other))
		}
		// Failures during a ban do not start another ban (one log line, one metric).
		if b.fail(src) {
			t.Fatal("failure while banned reported a new ban")
		}
	})

	t.Run("ban expires after its duration", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 0; i < max; i++ {
			b.fail(src)
		}
		clk.advance(duration - time.Nanosecond)
		if !b.banned(src) {
			t.Fatal("ban ended early")
		}
		if n := b.sweep(); n != 1 {
			t.Fatalf("sweep = %d banned, want 1", n)
		}
		clk.advance(time.Nanosecond)
		if b.banned(src) {
			t.Fatal("still banned after duration")
		}
		// A fresh count starts: N-1 new failures do not ban again.
		for i := 1; i < max; i++ {
			if b.fail(src) {
				t.Fatalf("failure %d after the ban banned again", i)
			}
		}
		if !b.fail(src) {
			t.Fatal("Nth failure after the ban did not ban")
		}
	})

	t.Run("window resets the count", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 1; i < max; i++ {
			b.fail(src)
		}
		clk.advance(window + time.Second)
		if b.fail(src) {
			t.Fatal("failure after the window banned")
		}
		for i := 2; i < max; i++ {
			if b.fail(src) {
				t.Fatalf("failure %d of the new window banned", i)
			}
		}
		if !b.fail(src) {
			t.Fatal("Nth failure of the new window did not ban")
		}
	})

	t.Run("success forgets failures", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 1; i < max; i++ {
			b.fail(src)
		}
		b.succeed(src)
		if b.fail(src) {
			t.Fatal("failure after a success banned")
		}
	})

	t.Run("success does not lift a ban", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 0; i < max; i++ {
			b.fail(src)
		}
		b.succeed(src)
		if !b.banned(src) {
			t.Fatal("success lifted the ban")
		}
	})

	t.Run("sources are counted apart", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		for i := 1; i < max; i++ {
			b.fail(src)
			b.fail(other)
		}
		if b.banned(src) || b.banned(other) {
			t.Fatal("interleaved N-1 failures banned")
		}
	})

	t.Run("max_failures 1 bans at once", func(t *testing.T) {
		clk := newClock()
		b := newBanList(1, window, duration, clk.now)
		if !b.fail(src) || !b.banned(src) {
			t.Fatal("first failure did not ban")
		}
	})

	t.Run("sweep forgets old sources", func(t *testing.T) {
		clk := newClock()
		b := newBanList(max, window, duration, clk.now)
		b.fail(src)
		clk.advance(window + time.Second)
		if n := b.sweep(); n != 0 {
			t.Fatalf("sweep = %d", n)
		}
		b.mu.Lock()
		n := len(b.sources)
		b.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d sources kept after their window", n)
		}
	})
}
